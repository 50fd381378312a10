# Reference values for causal_hcc.missing's polyreg (a categorical confounder
# with three or more levels imputed by multinomial logistic regression).
#
# Run from the repository root:  Rscript tests/reference/missing_polyreg.R
# Writes
#   tests/reference/fixtures/missing_polyreg_full.csv   the complete gbsg columns of (a)
#   tests/reference/fixtures/missing_polyreg_gbsg.csv   gbsg with MAR missingness induced in
#                                                        'grade' (3 levels, as text I/II/III)
#                                                        and 'size' (fixed seed)
#   tests/reference/fixtures/missing_polyreg.json        (a) mice:::augment + nnet::multinom
#                                                        class probabilities on fixed data;
#                                                        (b) mice(polyreg for grade, pmm for
#                                                        size) + coxph + pool(), m = 50
# CI does not run R: the Python tests read these fixtures.
suppressPackageStartupMessages({
  library(survival)
  library(mice)
  library(nnet)
  library(jsonlite)
})
fx <- "tests/reference/fixtures"

## ------------------------------------------------ MAR missingness in gbsg ----
d <- survival::gbsg[, c("pid", "rfstime", "status", "hormon", "age", "meno", "size", "grade",
                        "nodes", "pgr", "er")]
d$grade <- factor(c("I", "II", "III")[d$grade], levels = c("I", "II", "III"))
set.seed(20261127)
n <- nrow(d)
# 'grade' missing more often for older patients, events and the hormone-treated;
# 'size' more often with many nodes (MAR: observed variables only)
p_grade <- plogis(-1.6 + 0.04 * (d$age - 53) + 0.8 * d$status + 0.5 * d$hormon)
p_size <- plogis(-2.4 + 0.08 * (d$nodes - 5) + 0.5 * d$status)
d$grade[runif(n) < p_grade] <- NA
d$size[runif(n) < p_size] <- NA
write.csv(d, file.path(fx, "missing_polyreg_gbsg.csv"), row.names = FALSE, na = "")

## ------------------------------------------------ (a) one polyreg fit on fixed data ----
# complete cases of the full data: y = grade, x = age, nodes, pgr, er, hormon, status;
# rows 1..40 play the 'missing' cases. augment() and multinom() exactly as
# mice.impute.polyreg calls them, with a tight optimiser so the MLE is reached.
g <- survival::gbsg
write.csv(g[, c("pid", "age", "nodes", "pgr", "er", "hormon", "status", "grade")],
          file.path(fx, "missing_polyreg_full.csv"), row.names = FALSE)
x <- as.matrix(g[, c("age", "nodes", "pgr", "er", "hormon", "status")])
y <- factor(c("I", "II", "III")[g$grade], levels = c("I", "II", "III"))
ry <- rep(TRUE, nrow(g)); ry[1:40] <- FALSE
aug <- mice:::augment(y, ry, x, !ry)
xy <- cbind.data.frame(y = aug$y, x = aug$x)
fit <- multinom(formula(xy), data = xy[aug$ry, , drop = FALSE], weights = aug$w[aug$ry],
                maxit = 10000, reltol = 1e-14, abstol = 1e-300, trace = FALSE)
post <- predict(fit, xy[aug$wy, , drop = FALSE], type = "probs")
fit_plain <- multinom(y ~ x, subset = ry, maxit = 10000, reltol = 1e-14, abstol = 1e-300, trace = FALSE)

## ------------------------------------------------ (b) mice, as causal_hcc does ----
na_fit <- survfit(Surv(rfstime, status) ~ 1, data = d)
d$H <- na_fit$cumhaz[match(d$rfstime, na_fit$time)]
imp_data <- d[, c("hormon", "age", "meno", "size", "grade", "nodes", "pgr", "er", "status", "H", "rfstime")]
pred <- make.predictorMatrix(imp_data)
pred[, "rfstime"] <- 0
meth <- make.method(imp_data)
meth["grade"] <- "polyreg"
meth["size"] <- "pmm"
M <- 50
imp <- mice(imp_data, m = M, maxit = 10, method = meth, predictorMatrix = pred, donors = 5L,
            seed = 11, printFlag = FALSE)
form <- Surv(rfstime, status) ~ hormon + age + meno + size + grade + nodes + pgr + er
fit_mi <- with(imp, coxph(Surv(rfstime, status) ~ hormon + age + meno + size + grade + nodes + pgr + er,
                           ties = "efron"))
pl <- pool(fit_mi)
ps <- as.data.frame(pl$pooled)
sm <- summary(pl)
row <- function(term) {
  i <- which(ps$term == term)
  list(estimate = ps$estimate[i], se = sm$std.error[i], ubar = ps$ubar[i], b = ps$b[i], t = ps$t[i],
       df = ps$df[i], fmi = ps$fmi[i], dfcom = ps$dfcom[i])
}
# share of each imputed level among the missing, averaged over the m imputations
miss <- is.na(d$grade)
shares <- sapply(seq_len(M), function(i) table(complete(imp, i)$grade[miss]) / sum(miss))
cc <- coxph(form, data = d)
full <- coxph(form, data = transform(survival::gbsg,
                                     grade = factor(c("I", "II", "III")[grade], levels = c("I", "II", "III"))))

out <- list(
  R_version = R.version.string, mice_version = as.character(packageVersion("mice")),
  nnet_version = as.character(packageVersion("nnet")),
  fixed = list(rows_missing = 40, predictors = colnames(x), probs = unname(post),
               coef_plain = unname(coef(fit_plain))),
  m = M, maxit = 10, donors = 5,
  n_missing = list(grade = sum(is.na(d$grade)), size = sum(is.na(d$size)),
                   complete_cases = sum(complete.cases(d))),
  pooled = list(gradeII = row("gradeII"), gradeIII = row("gradeIII"), hormon = row("hormon"),
                size = row("size")),
  imputed_share = as.list(setNames(rowMeans(shares), rownames(shares))),
  imputed_share_sd = as.list(setNames(apply(shares, 1, sd), rownames(shares))),
  complete_case = list(gradeII = unname(coef(cc)["gradeII"]), gradeIII = unname(coef(cc)["gradeIII"]),
                       hormon = unname(coef(cc)["hormon"]), n = cc$n),
  full_data = list(gradeII = unname(coef(full)["gradeII"]), gradeIII = unname(coef(full)["gradeIII"]),
                   hormon = unname(coef(full)["hormon"]))
)
write_json(out, file.path(fx, "missing_polyreg.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
for (t in c("gradeII", "gradeIII", "hormon", "size")) cat(t, unlist(row(t)[c("estimate", "se", "b", "fmi")]), "\n")
cat("missing:", unlist(out$n_missing), "\n")
cat("imputed shares:", unlist(out$imputed_share), "\n")
