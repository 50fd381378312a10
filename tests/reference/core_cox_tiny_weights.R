# survival::coxph on tests/reference/fixtures/core_cox_tiny_weights.csv (written by core_cox_tiny_weights.py):
# a stratified, weighted Cox model whose stratum 0 has late risk sets of weight ~1e-27 only. R sums each
# stratum's risk sets on their own; writes core_cox_tiny_weights.json.
#   python tests/reference/core_cox_tiny_weights.py && Rscript tests/reference/core_cox_tiny_weights.R
suppressPackageStartupMessages({ library(survival); library(jsonlite) })
fx <- "tests/reference/fixtures"
d <- read.csv(file.path(fx, "core_cox_tiny_weights.csv"))
out <- list()
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(t, e) ~ x + strata(s), data = d, weights = w, ties = ties, robust = TRUE)
  out[[ties]] <- list(coef = unname(coef(f)), se = unname(sqrt(diag(vcov(f)))),
                      naive_se = unname(sqrt(diag(f$naive.var))), loglik = f$loglik)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(fx, "core_cox_tiny_weights.json"))
