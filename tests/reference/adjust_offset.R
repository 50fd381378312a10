# Reference values for g-formula and AIPTW with a confounder of large offset (issue 18), on
# tests/reference/fixtures/adjust_offset.csv (written by adjust_offset.py): year = 2000..2012,
# log-HR 0.5 per year, so the linear predictor at the covariate means is about 1014.
#
# Run from the repository root:
#   python tests/reference/adjust_offset.py && Rscript tests/reference/adjust_offset.R
#
# riskRegression 2022.11.28's ate() and predictCox() themselves return NaN on these data (their
# baseline hazard is taken at covariates = 0: exp(-1014) underflows). A Cox model's predictions
# do not change when a covariate is shifted by a constant, so the riskRegression references are
# computed with year - 2000 (same model, same standardised risks); survival::survfit(coxph, newdata),
# which predicts from the centred baseline hazard, gives the g-formula risks on the raw year as a
# second reference. Writes adjust_offset.json.
suppressPackageStartupMessages({
  library(survival); library(riskRegression); library(jsonlite)
})
fx <- "tests/reference/fixtures"
d <- read.csv(file.path(fx, "adjust_offset.csv"))
d$treat <- factor(d$treat)
times <- c(5, 10, 20)
ev_raw <- coxph(Surv(time, status) ~ treat + year + x, data = d, x = TRUE, y = TRUE, ties = "efron")
nd <- function(arm) { z <- d; z$treat <- factor(arm, levels = c(0, 1)); z }
rr_raw <- sapply(0:1, function(arm) colMeans(predictCox(ev_raw, newdata = nd(arm), times = times,
                                                         type = "survival")$survival))
sf_raw <- sapply(0:1, function(arm) rowMeans(summary(survfit(ev_raw, newdata = nd(arm)), times = times)$surv))

ds <- d; ds$year <- ds$year - 2000
ev <- coxph(Surv(time, status) ~ treat + year + x, data = ds, x = TRUE, y = TRUE, ties = "efron")
ce <- coxph(Surv(time, status == 0) ~ treat + year + x, data = ds, x = TRUE, y = TRUE, ties = "efron")
tr <- glm(treat ~ year + x, family = binomial, data = ds)
tidy_ate <- function(x) {
  mr <- as.data.frame(x$meanRisk); dr <- as.data.frame(x$diffRisk)
  list(meanRisk = mr[, intersect(c("estimator", "time", "treatment", "estimate", "se"), names(mr))],
       diffRisk = dr[, intersect(c("estimator", "time", "A", "B", "estimate", "se"), names(dr))])
}
g <- ate(event = ev, treatment = "treat", data = ds, times = times, estimator = "GFORMULA", se = FALSE,
         verbose = FALSE)
ai <- ate(event = ev, treatment = tr, censor = ce, data = ds, times = times, estimator = "AIPTW", se = TRUE,
          known.nuisance = TRUE, verbose = FALSE)
# a target time after the last follow-up time: riskRegression gives NA (the curves end there)
g_beyond <- ate(event = ev, treatment = "treat", data = ds, times = max(ds$time) + 1, estimator = "GFORMULA",
                se = FALSE, verbose = FALSE)
out <- list(times = times, last_time = max(ds$time),
            beyond_last_time_is_na = all(is.na(as.data.frame(g_beyond$meanRisk)$estimate)),
            outcome_cox = list(coef = unname(coef(ev_raw)), names = names(coef(ev_raw))),
            lp_at_means = unname(sum(coef(ev_raw)[c("year", "x")] * colMeans(d[, c("year", "x")]))),
            predictcox_raw_is_nan = all(is.nan(rr_raw)),
            survfit_raw = list(surv0 = unname(sf_raw[, 1]), surv1 = unname(sf_raw[, 2])),
            gformula = tidy_ate(g), aiptw_known_nuisance = tidy_ate(ai),
            versions = list(survival = as.character(packageVersion("survival")),
                            riskRegression = as.character(packageVersion("riskRegression"))))
write_json(out, file.path(fx, "adjust_offset.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
