# Reference values for causal_hcc/core/cmprsk.py (issue 21: competing risks).
#
# Run from the repository root:
#   Rscript tests/reference/core_cmprsk.R
# Writes the data the tests use (so CI needs no R) and the reference numbers:
#   tests/reference/fixtures/core_mgus2_cr.csv    200 rows of survival::mgus2: etime/event
#       (1 = progression (PCM), 2 = death before it), random case weights w, delayed
#       entry times, a coarse cluster cl, covariates age/sex/hgb, strata strat;
#   tests/reference/fixtures/core_mgus2_cr_untied.csv  the same with times jittered (no ties),
#       for cmprsk::crr;
#   tests/reference/fixtures/core_melanoma_cr.csv riskRegression::Melanoma, ties in time
#       separated by 0.01 day (see the AIPTW note below);
#   tests/reference/fixtures/core_cmprsk.json     the numbers.
suppressPackageStartupMessages({
  library(survival); library(cmprsk); library(riskRegression); library(jsonlite)
})
cat("survival", as.character(packageVersion("survival")),
    "cmprsk", as.character(packageVersion("cmprsk")),
    "riskRegression", as.character(packageVersion("riskRegression")), "\n")
fx <- "tests/reference/fixtures"

# ---------------------------------------------------------------- data
d <- mgus2[1:200, ]
d$etime <- with(d, ifelse(pstat == 1, ptime, futime))
d$event <- with(d, ifelse(pstat == 1, 1, 2 * death))
set.seed(1)
d$w <- runif(nrow(d), 0.5, 2)
d$entry <- round(runif(nrow(d)) * pmin(d$etime, 30))
d$entry[d$entry >= d$etime] <- 0
d$cl <- d$id %% 37
d$sex <- as.numeric(d$sex == "M")
d <- d[!is.na(d$hgb), c("id", "etime", "event", "w", "entry", "cl", "age", "sex", "hgb")]
d$strat <- d$id %% 3
write.csv(d, file.path(fx, "core_mgus2_cr.csv"), row.names = FALSE)
du <- d
set.seed(3)
du$etime <- du$etime + runif(nrow(du), 0, 0.01)
write.csv(du, file.path(fx, "core_mgus2_cr_untied.csv"), row.names = FALSE)

out <- list()

# ---------------------------------------------------------------- Aalen-Johansen
# R multi-state survfit: pstate = (s0) [event-free], 1, 2; std.err by the infinitesimal
# jackknife. influence.pstate is per unit of case weight and per id; causal_hcc's
# influences include the weight (as its Kaplan-Meier ones do), so the test multiplies.
# survival 3.5-3 passes `id` (not `cluster`) to its multi-state routine (survfitCI ->
# docurve2): a coarser `cluster` does not change std.err. The clustered reference is
# therefore the sum over clusters of R's weighted per-id influences, squared.
aj <- function(fit, times, infl_idx, cl = NULL, w = NULL) {
  r <- list(time = fit$time, pstate = fit$pstate, std_err = fit$std.err,
            lower = fit$lower, upper = fit$upper, states = fit$states)
  s <- summary(fit, times = times)
  r$at <- list(times = times, pstate = s$pstate, std_err = s$std.err)
  if (!is.null(fit$influence.pstate)) {
    r$influence_index <- infl_idx            # 0-based time index into fit$time
    r$influence <- fit$influence.pstate[, 1 + infl_idx + 1, , drop = FALSE]   # column 1 is the start
    if (!is.null(cl)) {
      wi <- fit$influence.pstate * w         # weighted, per id (ids sorted = rows here)
      agg <- apply(wi, c(2, 3), function(x) tapply(x, cl, sum))
      r$cluster_std_err <- sqrt(apply(agg, c(2, 3), function(x) sum(x^2)))[-1, ]
    }
  }
  r
}
times <- c(12, 60, 120, 240)
out$aj_plain <- aj(survfit(Surv(etime, factor(event)) ~ 1, data = d, influence = TRUE), times, c(9, 49))
out$aj_weighted <- aj(survfit(Surv(etime, factor(event)) ~ 1, data = d, weights = w, id = id,
                              influence = TRUE), times, c(9, 49))
fe <- survfit(Surv(entry, etime, factor(event)) ~ 1, data = d, weights = w, id = id, influence = TRUE)
stopifnot(all(diff(d$id) > 0))
out$aj_entry <- aj(fe, times, c(9, 49), cl = d$cl, w = d$w)
bysex <- survfit(Surv(etime, factor(event)) ~ sex, data = d, weights = w, id = id)
out$aj_sex <- lapply(1:2, function(i) {
  s <- summary(bysex[i, ], times = times)
  list(pstate = s$pstate, std_err = s$std.err)
})

# ---------------------------------------------------------------- Fine-Gray
fgd <- function(fg) list(id = fg$id, start = fg$fgstart, stop = fg$fgstop, status = fg$fgstatus, wt = fg$fgwt)
vars <- c("id", "etime", "event", "age", "sex", "hgb", "w", "strat")
fg <- finegray(Surv(etime, factor(event)) ~ ., data = d[, vars], etype = "1")
out$fg_plain <- fgd(fg)
out$fg_weighted <- fgd(finegray(Surv(etime, factor(event)) ~ ., data = d[, vars], etype = "1", weights = w))
out$fg_strata <- fgd(finegray(Surv(etime, factor(event)) ~ . + strata(strat), data = d[, vars], etype = "1"))
out$fg_entry <- fgd(finegray(Surv(entry, etime, factor(event)) ~ .,
                             data = d[, c("id", "entry", "etime", "event", "age")], etype = "1", id = id))
out$fg_cause2 <- fgd(finegray(Surv(etime, factor(event)) ~ ., data = d[, c("id", "etime", "event", "age")],
                              etype = "2"))
cox <- function(m) list(coef = unname(coef(m)), var = unname(m$var))
out$fg_cox <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fg, weights = fgwt,
                        cluster = id))
out$fg_cox_rowrobust <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fg, weights = fgwt))
fgw <- finegray(Surv(etime, factor(event)) ~ ., data = d[, vars], etype = "1", weights = w)
out$fg_cox_weighted <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fgw,
                                 weights = fgwt, cluster = id))
fgs <- finegray(Surv(etime, factor(event)) ~ . + strata(strat), data = d[, vars], etype = "1")
out$fg_cox_strata <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb + strata(strat), data = fgs,
                               weights = fgwt, cluster = id))
# cmprsk::crr on untied times (crr puts events at a censoring time into the censoring
# risk set; finegray does not: with no ties the two coincide)
fgu <- finegray(Surv(etime, factor(event)) ~ ., data = du[, vars], etype = "1")
out$fg_cox_untied <- cox(coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fgu, weights = fgwt,
                               cluster = id, ties = "breslow"))
cr <- crr(du$etime, du$event, cbind(du$age, du$sex, du$hgb), failcode = 1, cencode = 0, gtol = 1e-10, maxiter = 50)
out$crr_untied <- list(coef = unname(cr$coef), var = unname(cr$var))
cr2 <- crr(d$etime, d$event, cbind(d$age, d$sex, d$hgb), failcode = 1, cencode = 0, gtol = 1e-10, maxiter = 50)
out$crr_tied <- list(coef = unname(cr2$coef), var = unname(cr2$var))

# ---------------------------------------------------------------- cause-specific Cox
out$csc1 <- cox(coxph(Surv(etime, event == 1) ~ age + sex + hgb, data = d))
out$csc2 <- cox(coxph(Surv(etime, event == 2) ~ age + sex + hgb, data = d))

# ---------------------------------------------------------------- riskRegression::ate (CSC)
# riskRegression 2022.11.28 counts each censored subject's time as one jump of the
# censoring martingale (tied censoring times count m times); causal_hcc uses one jump
# per distinct time. On data without ties the two coincide: ties separated by 0.01 day.
data(Melanoma, package = "riskRegression")
m <- Melanoma
m$time <- as.numeric(m$time)
dup <- duplicated(m$time) | duplicated(m$time, fromLast = TRUE)
k <- ave(m$time, m$time, FUN = seq_along) - 1
m$time <- m$time + 0.01 * k
stopifnot(!any(duplicated(m$time)))
m$ulcer01 <- as.numeric(m$ulcer == "present")
m$male <- as.numeric(m$sex == "Male")
mm <- m[, c("time", "status", "ulcer01", "age", "male", "logthick")]
write.csv(mm, file.path(fx, "core_melanoma_cr.csv"), row.names = FALSE)
mf <- mm; mf$ulcer01 <- factor(mf$ulcer01)
csc <- CSC(Hist(time, status) ~ ulcer01 + age + male + logthick, data = mf)
tr <- glm(ulcer01 ~ age + male + logthick, family = binomial, data = mf)
ce <- coxph(Surv(time, status == 0) ~ ulcer01 + age + male + logthick, data = mf, x = TRUE, y = TRUE)
atimes <- c(1000, 2000, 3000)
tidy <- function(x) {
  list(meanRisk = as.data.frame(x$meanRisk)[, c("estimator", "time", "treatment", "estimate", "se")],
       diffRisk = as.data.frame(x$diffRisk)[, c("estimator", "time", "A", "B", "estimate", "se")],
       ratioRisk = as.data.frame(x$ratioRisk)[, c("estimator", "time", "A", "B", "estimate", "se")])
}
g <- ate(event = csc, treatment = "ulcer01", data = mf, times = atimes, cause = 1,
         estimator = "GFORMULA", se = TRUE, verbose = FALSE)
ai_known <- ate(event = csc, treatment = tr, censor = ce, data = mf, times = atimes, cause = 1,
                estimator = "AIPTW", se = TRUE, known.nuisance = TRUE, verbose = FALSE)
ai <- ate(event = csc, treatment = tr, censor = ce, data = mf, times = atimes, cause = 1,
          estimator = "AIPTW", se = TRUE, verbose = FALSE)
out$ate <- list(times = atimes, gformula = tidy(g), aiptw_known = tidy(ai_known), aiptw = tidy(ai),
                ps = unname(fitted(tr)),
                csc_coef = lapply(csc$models, function(f) unname(coef(f))),
                censor_coef = unname(coef(ce)))
nd <- mf[c(1, 50, 100, 150), ]
out$csc_predict <- list(rows = c(1, 50, 100, 150) - 1, times = atimes,
                        cause1 = unname(predictRisk(csc, newdata = nd, times = atimes, cause = 1)),
                        cause2 = unname(predictRisk(csc, newdata = nd, times = atimes, cause = 2)))
write_json(out, file.path(fx, "core_cmprsk.json"), digits = NA, auto_unbox = TRUE, matrix = "rowmajor",
           na = "null", pretty = FALSE)
