# Reference values for the competing-risks strategies (issue 21), on the cohort of
# tests/competing_data.py (codes 0 censored, 1 cancer death, 2 liver failure) and on the
# rows the designs build from it (written by tests/outcome/make_competing_fixture.py).
#
# Run from the repository root:
#   .venv/bin/python tests/outcome/make_competing_fixture.py
#   Rscript tests/reference/outcome_competing.R
# (sources tests/reference/cmprsk_real_censoring.R for the designs with artificial censoring)
# Writes tests/reference/fixtures/outcome_competing.json.
#
# Per strategy: Aalen-Johansen CIF of cause 1 per arm at 12 and 24 months (survfit
# multi-state; the pipeline's IJ SE), the cause-specific Cox HR (coxph, status == 1) and
# the Fine-Gray sHR (finegray + coxph(weights = fgwt, cluster = patient)); for the
# g-formula and AIPTW riskRegression::ate with a CSC outcome model.
suppressPackageStartupMessages({library(survival); library(riskRegression); library(jsonlite)})
fx <- "tests/reference/fixtures"
times <- c(12, 24)
d <- read.csv(file.path(fx, "outcome_competing_cohort.csv"))
d$stage <- factor(d$stage)
out <- list(times = times)

# CIF of cause 1 by arm at `times`, its IJ SE, and per-id influences (x case weight) at those times
cif_arms <- function(fit, ids_by_arm = NULL, w_by_arm = NULL) {
  res <- list()
  for (k in 1:2) {
    f <- fit[k, ]
    s <- summary(f, times = times)
    r <- list(cif = unname(s$pstate[, which(f$states == "1")]),
              se = unname(s$std.err[, which(f$states == "1")]))
    if (!is.null(f$influence.pstate)) {
      # influence.pstate has one column per time, plus a first one for the start unless the first
      # time is the start itself
      off <- dim(f$influence.pstate)[2] - length(f$time)
      col <- sapply(times, function(t) max(which(f$time <= t))) + off
      inf <- f$influence.pstate[, col, which(f$states == "1"), drop = FALSE][, , 1]
      r$influence <- inf
      r$ids <- ids_by_arm[[k]]
    }
    res[[k]] <- r
  }
  names(res) <- c("untreated", "treated")
  res
}
cox <- function(m) list(coef = unname(coef(m))[1], se = unname(sqrt(diag(m$var)))[1])

# ---------------------------------------------------------------- baseline design
aj <- survfit(Surv(fu_months, factor(cause)) ~ operated, data = d, id = patient_no)
out$naive <- list(cif = cif_arms(aj),
                  csc = cox(coxph(Surv(fu_months, cause == 1) ~ operated, data = d)))
fgd <- finegray(Surv(fu_months, factor(cause)) ~ ., data = d, etype = "1")
out$naive$fg <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ operated, data = fgd, weights = fgwt,
                          cluster = patient_no))
out$multivariable <- list(
  csc = cox(coxph(Surv(fu_months, cause == 1) ~ operated + fit_pt + stage + age_y, data = d)),
  fg = cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ operated + fit_pt + stage + age_y, data = fgd,
                 weights = fgwt, cluster = patient_no)))
ps <- fitted(glm(operated ~ fit_pt + stage + age_y, family = binomial, data = d))
d$w <- ifelse(d$operated == 1, 1 / ps, 1 / (1 - ps))
ajw <- survfit(Surv(fu_months, factor(cause)) ~ operated, data = d, weights = w, id = patient_no)
fgw <- finegray(Surv(fu_months, factor(cause)) ~ ., data = d, etype = "1", weights = w)
out$iptw <- list(cif = cif_arms(ajw),
                 csc = cox(coxph(Surv(fu_months, cause == 1) ~ operated, data = d, weights = w,
                                 cluster = patient_no)),
                 fg = cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ operated, data = fgw, weights = fgwt,
                                cluster = patient_no)))
# g-formula and AIPTW (riskRegression::ate, CSC outcome model, Cox censoring model)
stopifnot(!any(duplicated(d$fu_months[d$cause == 0])))
df <- d; df$operated <- factor(df$operated)
csc <- CSC(Hist(fu_months, cause) ~ operated + fit_pt + stage + age_y, data = df)
tr <- glm(operated ~ fit_pt + stage + age_y, family = binomial, data = df)
ce <- coxph(Surv(fu_months, cause == 0) ~ operated + fit_pt + stage + age_y, data = df, x = TRUE, y = TRUE)
tidy <- function(x) list(meanRisk = as.data.frame(x$meanRisk)[, c("time", "treatment", "estimate", "se")],
                         diffRisk = as.data.frame(x$diffRisk)[, c("time", "estimate", "se")],
                         ratioRisk = as.data.frame(x$ratioRisk)[, c("time", "estimate", "se")])
out$gformula <- tidy(ate(event = csc, treatment = "operated", data = df, times = times, cause = 1,
                         estimator = "GFORMULA", se = TRUE, verbose = FALSE))
out$aiptw <- tidy(ate(event = csc, treatment = tr, censor = ce, data = df, times = times, cause = 1,
                      estimator = "AIPTW", se = TRUE, known.nuisance = TRUE, verbose = FALSE))

# ---------------------------------------------------------------- landmark(3): one row per patient at risk
l <- read.csv(file.path(fx, "outcome_competing_landmark.csv"))
fgl <- finegray(Surv(stop, factor(status)) ~ ., data = l, etype = "1")
out$landmark <- list(cif = cif_arms(survfit(Surv(stop, factor(status)) ~ arm, data = l, id = patient)),
                     csc = cox(coxph(Surv(stop, status == 1) ~ arm, data = l)),
                     fg = cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ arm, data = fgl, weights = fgwt,
                                    cluster = patient)))

# ---------------------------------------------------------------- time-varying: cause-specific Cox only
tv <- read.csv(file.path(fx, "outcome_competing_time_varying.csv"))
out$time_varying <- list(csc = cox(coxph(Surv(start, stop, status == 1) ~ arm, data = tv, cluster = patient)))

# ---------------------------------------------------------------- sequential trials (ITT), stratified by trial
st <- read.csv(file.path(fx, "outcome_competing_sequential_trials.csv"))
fgs <- finegray(Surv(stop, factor(status)) ~ . + strata(trial), data = st, etype = "1")
ajs <- survfit(Surv(stop, factor(status)) ~ arm, data = st, id = unit, influence = TRUE)
ids <- list(sort(unique(st$unit[st$arm == 0])), sort(unique(st$unit[st$arm == 1])))
out$sequential_trials <- list(
  cif = cif_arms(ajs, ids),
  unit_patient = st[!duplicated(st$unit), c("unit", "patient")],
  csc = cox(coxph(Surv(stop, status == 1) ~ arm + strata(trial), data = st, cluster = patient)),
  fg = cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + strata(trial), data = fgs, weights = fgwt,
                 cluster = patient)))

# ---------------------------------------------------------------- clone-censor: weighted (start, stop] rows
cc <- read.csv(file.path(fx, "outcome_competing_clone_censor.csv"))
fgc <- finegray(Surv(start, stop, factor(status)) ~ ., data = cc, etype = "1", id = unit, weights = w)
# survival 3.5-3's multi-state survfit merges the rows of an id that have no transition between
# them and keeps the last row's case weight for the merged interval (survfitCI: `weights[-e2]`), so
# time-varying (IPC) weights within a clone are lost with id = unit. Each row as its own id keeps
# every row's weight on its own (start, stop] interval: the same risk sets, and the IJ SE per row.
cc$row <- seq_len(nrow(cc))
# Fine-Gray (issue 21): the clones' artificial censorings (column art) are handled by the IPC weights,
# so the censoring distribution G is the weighted Kaplan-Meier curve of the real censoring only, and the
# weights are unstabilised (w / num): a clone with a competing event keeps its weight of that time in
# later risk sets, where a stabilising numerator would not cancel. Built by hand
# (cmprsk_real_censoring.R); R's finegray() on the stabilised weights is kept as fg_rfinegray.
source("tests/reference/cmprsk_real_censoring.R")
fg_design <- function(x, strata = NULL) {
  r <- fg_real(x$start, x$stop, x$status, x$unit, x$w / x$num, x$art == 1, weighted = TRUE, strata = strata)
  r$arm <- x$arm[r$row]; r$patient <- x$patient[r$row]
  if (is.null(strata)) coxph(Surv(a, b, status) ~ arm, data = r, weights = wt, cluster = patient)
  else coxph(Surv(a, b, status) ~ arm + strata(strat), data = r, weights = wt, cluster = patient)
}
out$clone_censor <- list(
  cif = cif_arms(survfit(Surv(start, stop, factor(status)) ~ arm, data = cc, weights = w, id = row)),
  csc = cox(coxph(Surv(start, stop, status == 1) ~ arm, data = cc, weights = w, cluster = patient)),
  fg = cox(fg_design(cc)),
  fg_rfinegray = cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ arm, data = fgc, weights = fgwt, cluster = patient)))

# ---------------------------------------------------------------- per-protocol sequential trials
pp <- read.csv(file.path(fx, "outcome_competing_sequential_trials_pp.csv"))
out$sequential_trials_pp <- list(
  csc = cox(coxph(Surv(start, stop, status == 1) ~ arm + strata(trial), data = pp, weights = w, cluster = patient)),
  fg = cox(fg_design(pp, strata = pp$trial)))

write_json(out, file.path(fx, "outcome_competing.json"), digits = NA, auto_unbox = TRUE, matrix = "rowmajor",
           na = "null", pretty = FALSE)
