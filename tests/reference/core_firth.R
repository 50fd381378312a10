# Reference values for causal_hcc.core.firth (Firth-penalised logistic and Cox regression).
#
# Run from the repository root:  Rscript tests/reference/core_firth.R
# logistf and coxphf are not packaged for Debian, so:
# * logistic: brglm2 (glm(method = "brglmFit", type = "MPL_Jeffreys") maximises the
#   Jeffreys-penalised likelihood, which is Firth's for the logit link), checked against the
#   published example of Heinze & Schemper (Stat Med 2002;21:2409-19, endometrial cancer data:
#   intercept 3.775, NV 2.929, PI -0.035, EH -2.604);
# * Cox: an independent maximisation of the penalised partial likelihood
#   l(b) + 0.5 log det I(b), with l and I taken from survival::coxph evaluated at b
#   (init = b, iter.max = 0), maximised by optim then polished by Newton steps on a
#   Richardson-extrapolated numerical gradient; profile penalised-likelihood limits by uniroot
#   (nuisance coefficient maximised by optimize), penalised likelihood-ratio p-values.
# Reads tests/reference/fixtures/core_<name>.csv (written by core_cox.R) and writes
# tests/reference/fixtures/core_firth.json.
suppressPackageStartupMessages({
  library(survival)
  library(brglm2)
  library(jsonlite)
})
fx <- "tests/reference/fixtures"
rd <- function(name) read.csv(file.path(fx, paste0("core_", name, ".csv")))
out <- list(logistic = list(), cox = list())

## ------------------------------------------------------------ logistic ----
lfit <- function(formula, data) {
  f <- glm(formula, family = binomial("logit"), data = data, method = "brglmFit", type = "MPL_Jeffreys",
           control = list(epsilon = 1e-15, maxit = 10000))
  X <- model.matrix(f)
  list(X = unname(X), y = unname(f$y), coef = unname(coef(f)), fitted = unname(fitted(f)),
       se = unname(sqrt(diag(vcov(f)))))
}
data(endometrial, package = "brglm2")
e <- lfit(HG ~ NV + PI + EH, endometrial)
stopifnot(all(abs(e$coef - c(3.775, 2.929, -0.035, -2.604)) < 1e-3))  # Heinze & Schemper 2002
out$logistic$endometrial <- e
# complete separation: x1 > 10 <=> y = 1 (the MLE is infinite)
sep <- data.frame(x1 = 1:20, x2 = c(3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4))
sep$y <- as.integer(sep$x1 > 10)
out$logistic$separated <- lfit(y ~ x1 + x2, sep)
lung <- rd("lung")
out$logistic$lung <- lfit(sex ~ age + ph.ecog, transform(lung, sex = as.integer(sex == 2)))

## ----------------------------------------------------------------- Cox ----
penal <- function(fml, data, b, ties, weights = NULL) {
  environment(fml) <- environment()
  f <- coxph(fml, data = data, init = b, ties = ties, weights = weights,
             control = coxph.control(iter.max = 0))
  v <- if (is.null(f$naive.var)) f$var else f$naive.var
  list(pl = f$loglik[2] + 0.5 * log(det(solve(v))), info = solve(v), ll = f$loglik[2])
}
ngrad <- function(fn, b, h = 1e-4) {
  g <- numeric(length(b))
  for (j in seq_along(b)) {
    d <- function(hh) { e <- replace(numeric(length(b)), j, hh); (fn(b + e) - fn(b - e)) / (2 * hh) }
    g[j] <- (4 * d(h / 2) - d(h)) / 3  # Richardson
  }
  g
}
firth_cox <- function(fml, data, ties, weights = NULL, p) {
  fn <- function(b) tryCatch(penal(fml, data, b, ties, weights)$pl, error = function(e) -1e10)
  o <- optim(rep(0, p), fn, method = "BFGS", control = list(fnscale = -1, reltol = 1e-16, maxit = 10000))
  b <- o$par
  for (i in 1:60) {  # Newton polish: information as the Hessian, numerical gradient
    st <- solve(penal(fml, data, b, ties, weights)$info, ngrad(fn, b))
    b <- b + st
    if (max(abs(st)) < 1e-12) break
  }
  list(coef = b, pl = fn(b), ll = penal(fml, data, b, ties, weights)$ll,
       se = sqrt(diag(solve(penal(fml, data, b, ties, weights)$info))), fn = fn)
}
# profile of coefficient j: maximise over the other one (p <= 2)
profile_cox <- function(fit, j, p, alpha = 0.05) {
  prof <- function(v) {
    if (p == 1) return(fit$fn(v))
    k <- 3 - j
    g <- function(u) { b <- numeric(2); b[j] <- v; b[k] <- u; fit$fn(b) }
    optimize(g, fit$coef[k] + c(-20, 20) * fit$se[k], maximum = TRUE, tol = 1e-13)$objective
  }
  crit <- qchisq(1 - alpha, 1)
  f <- function(v) 2 * (fit$pl - prof(v)) - crit
  b <- fit$coef[j]
  step <- max(fit$se[j], 0.1)
  lims <- sapply(c(-1, 1), function(d) {
    hi <- b + d * step
    while (f(hi) < 0) hi <- hi + d * step
    uniroot(f, sort(c(b, hi)), tol = 1e-13)$root
  })
  c(lims, pchisq(2 * (fit$pl - prof(0)), 1, lower.tail = FALSE))
}
cox_case <- function(fml, data, name, columns, ties = "breslow", time = "time", event = "status",
                     entry = NULL, weights = NULL, strata = NULL, profile = TRUE) {
  p <- length(columns)
  w <- if (is.null(weights)) NULL else data[[weights]]
  fit <- firth_cox(fml, data, ties, w, p)
  res <- list(data = name, columns = columns, ties = ties, time = time, event = event, entry = entry,
              weights = weights, strata = strata, coef = fit$coef, se = fit$se, penalised_loglik = fit$pl,
              loglik = fit$ll)
  if (profile) {
    pr <- sapply(seq_len(p), function(j) profile_cox(fit, j, p))
    res$ci_lower <- pr[1, ]; res$ci_upper <- pr[2, ]; res$p <- pr[3, ]
  }
  res
}
vet <- rd("veteran")
vet$sep <- as.integer(vet$status == 0)  # the 9 censored patients: no event in this group (monotone likelihood)
mono <- suppressWarnings(coxph(Surv(time, status) ~ sep + karno, data = vet))
stopifnot(coef(mono)[1] < -10)  # the unpenalised estimate runs off to -infinity
out$cox$veteran_monotone <- cox_case(Surv(time, status) ~ sep + karno, vet, "veteran", c("sep", "karno"))
out$cox$veteran_monotone_efron <- cox_case(Surv(time, status) ~ sep + karno, vet, "veteran", c("sep", "karno"),
                                           ties = "efron")
out$cox$veteran_trt <- cox_case(Surv(time, status) ~ trt2, vet, "veteran", "trt2")
out$cox$lung <- cox_case(Surv(time, status) ~ age + sex, lung, "lung", c("age", "sex"), ties = "efron")
out$cox$lung_three <- cox_case(Surv(time, status) ~ age + sex + ph.ecog, lung, "lung",
                               c("age", "sex", "ph.ecog"), profile = FALSE)
out$cox$lung_strata_weighted <- cox_case(Surv(time, status) ~ age + ph.ecog + strata(sex), lung, "lung",
                                         c("age", "ph.ecog"), ties = "efron", weights = "w", strata = "sex",
                                         profile = FALSE)
hrt <- rd("heart")
out$cox$heart <- cox_case(Surv(start, stop, event) ~ transplant + age, hrt, "heart", c("transplant", "age"),
                          time = "stop", event = "event", entry = "start")
out$meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
                 brglm2 = as.character(packageVersion("brglm2")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"), file.path(fx, "core_firth.json"))
cat("wrote", file.path(fx, "core_firth.json"), "\n")
