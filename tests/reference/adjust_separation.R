# Separation vs positivity in the logistic propensity model (issue 18): reference values on the
# crafted data sets of tests/reference/fixtures/adjust_separation.csv (adjust_separation.py).
#
# Run from the repository root:
#   python tests/reference/adjust_separation.py && Rscript tests/reference/adjust_separation.R
#
# For each set: glm(family = binomial) (converged?, fitted range, scores within 1e-6 of 0 or 1);
# the check of brglm2's (removed) check_infinite_estimates, by hand: the largest ratio of the SEs
# after 100 and after 25 IRLS iterations (epsilon 1e-300, so glm never stops early; 1 when the MLE is
# finite, growing without bound when it is infinite); and the linear program of
# Konis (2007) that detectseparation::detect_separation solves ("find": maximise the summed margins
# subject to every unit on its own side, coefficients bounded in [-1, 1], tolerance 1e-3), here with
# lpSolve (detectseparation itself is not packaged for Debian). Writes adjust_separation.json.
suppressPackageStartupMessages({
  library(lpSolve); library(jsonlite)
})
fx <- "tests/reference/fixtures"
d <- read.csv(file.path(fx, "adjust_separation.csv"))
cols <- list(near_overlap = "x", complete = c("x", "z"), quasi = c("x", "z"), quasi_offset = c("x", "z", "year"),
             overlap = c("x", "z"))

konis <- function(X, y, tolerance = 1e-3) {
  p <- ncol(X)
  xbar <- -sign(y - 0.5) * X             # constraints xbar %*% beta <= 0: every unit on its own side
  obj <- -colSums(xbar)
  # beta = u - v, u and v in [0, 1] (lpSolve's variables are >= 0)
  A <- rbind(cbind(xbar, -xbar), cbind(diag(p), matrix(0, p, p)), cbind(matrix(0, p, p), diag(p)))
  rhs <- c(rep(0, nrow(X)), rep(1, 2 * p))
  sol <- lp("max", c(obj, -obj), A, rep("<=", nrow(A)), rhs)
  beta <- sol$solution[1:p] - sol$solution[(p + 1):(2 * p)]
  beta[abs(beta) < tolerance] <- 0
  list(status = sol$status, separation = any(beta != 0), direction = sign(beta), objective = sol$objval)
}

out <- list()
for (s in names(cols)) {
  ds <- d[d$set == s, ]
  f <- reformulate(cols[[s]], "a")
  fit <- suppressWarnings(glm(f, family = binomial, data = ds, control = glm.control(epsilon = 1e-10, maxit = 100)))
  mu <- fitted(fit)
  se_at <- function(k) sqrt(diag(vcov(suppressWarnings(glm(f, family = binomial, data = ds,
                                                             control = glm.control(epsilon = 1e-300, maxit = k))))))
  lpres <- konis(model.matrix(fit), ds$a)
  out[[s]] <- list(columns = cols[[s]], n = nrow(ds), converged = fit$converged, iter = fit$iter,
                   min_fitted = min(mu), max_fitted = max(mu), n_near = sum(mu < 1e-6 | mu > 1 - 1e-6),
                   coef = unname(coef(fit)),
                   se_ratio_100_25 = max(se_at(100) / se_at(25)),
                   lp_separation = lpres$separation, lp_direction = lpres$direction)
}
out$versions <- list(R = R.version.string, lpSolve = as.character(packageVersion("lpSolve")))
write_json(out, file.path(fx, "adjust_separation.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
