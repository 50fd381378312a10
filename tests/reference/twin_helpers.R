# Reference values for the digital twin's fast helpers (causal_hcc.twin):
#   cox_binary_hr  -> survival::coxph(Surv(t, e) ~ x, ties = "efron"): HR and SE of log HR
#   km_median      -> the median of survival::survfit(Surv(t, e) ~ 1) (R's convention)
#
# Run from the repository root:
#   python tests/reference/twin_helpers.py && Rscript tests/reference/twin_helpers.R
# Reads tests/reference/fixtures/twin_cox_binary.csv and twin_km_median.csv and writes
# tests/reference/fixtures/twin_helpers.json. CI does not run R. (These replace the
# comparisons with lifelines, which pinned pandas < 3 in the test environment.)
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})
stopifnot(packageVersion("survival") >= "3.5")
fx <- "tests/reference/fixtures"
cb <- read.csv(file.path(fx, "twin_cox_binary.csv"))
fit <- coxph(Surv(t, e) ~ x, data = cb, ties = "efron", control = coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 50))
out <- list(cox_binary = list(hr = unname(exp(coef(fit))), se = unname(sqrt(diag(vcov(fit))))),
            km_median = list())
km <- read.csv(file.path(fx, "twin_km_median.csv"))
for (s in sort(unique(km$sample))) {
  d <- km[km$sample == s, ]
  med <- unname(summary(survfit(Surv(t, e) ~ 1, data = d))$table["median"])
  out$km_median[[as.character(s)]] <- if (is.na(med)) NULL else med
}
out$versions <- list(R = R.version.string, survival = as.character(packageVersion("survival")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(fx, "twin_helpers.json"))
