# Reference values for tests/test_formula.py: rms::rcs bases (Hmisc::rcspline.eval,
# default knots) and a Cox model with formula terms on survival::veteran.
# Run: Rscript tests/reference/data_formula.R   (from the repo root)
library(survival)
library(rms)
library(jsonlite)
set.seed(20261127)
sets <- list(
  normal200 = round(rnorm(200, 60, 10), 2),           # n >= 100: quantile knots
  normal60 = round(rnorm(60, 60, 10), 2),             # n < 100: outer knots at the 5th smallest/largest
  tied = c(rep(0, 30), round(rexp(170, 0.2), 1)),     # >= 5% at the lowest value (fractied rule)
  veteran_age = veteran$age)
bases <- list()
for (nm in names(sets)) {
  x <- sets[[nm]]
  for (k in 3:7) {
    b <- tryCatch(rcs(x, k), error = function(e) NULL, warning = function(w) NULL)
    if (is.null(b)) next
    bases[[paste0(nm, "_", k)]] <- list(set = nm, k = k, knots = as.numeric(attr(b, "parms")),
                                        basis = unname(unclass(b)[, , drop = FALSE]))
  }
}
v <- veteran
v$trt01 <- v$trt - 1
fit <- coxph(Surv(time, status) ~ trt01 + rcs(age, 4) + log(karno) + prior:karno + celltype,
             data = v, ties = "efron")
res <- list(sets = sets, bases = bases,
            veteran = list(coef = unname(coef(fit)), names = names(coef(fit)),
                           se = unname(sqrt(diag(vcov(fit))))),
            R = R.version.string, rms = as.character(packageVersion("rms")),
            Hmisc = as.character(packageVersion("Hmisc")))
write_json(res, "tests/reference/fixtures/data_formula.json", digits = NA, auto_unbox = TRUE, pretty = FALSE,
           matrix = "columnmajor")
