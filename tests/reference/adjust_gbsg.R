# Reference values for causal_hcc/adjust (issue 4) on survival::gbsg.
#
# Treatment: hormon; outcome: rfstime (days) / status; confounders:
# age, meno, size, grade, nodes, pgr, er (all numeric, as stored in gbsg).
# Run from the repository root:
#   Rscript tests/reference/adjust_gbsg.R
# Writes tests/reference/fixtures/adjust_gbsg.csv (the data, so tests need no R)
# and tests/reference/fixtures/adjust_gbsg.json (the reference numbers).
# The matched sets produced by causal_hcc's psm (written by
# `.venv/bin/python tests/adjust/make_psm_fixture.py`, before this script):
# adjust_psm_nn1.csv (1:1, caliper 0.2, no replacement; cluster = matched set)
# and adjust_psm_nn2r.csv (1:2 with replacement; cluster = patient) are
# analysed with coxph(weights, cluster) and survfit(weights, cluster) and the
# numbers written to adjust_psm_<name>.json. MatchIt 4.5.1's pairs are not
# used (its nearest-neighbour matching has a bug fixed in 4.5.4).
suppressPackageStartupMessages({
  library(survival); library(riskRegression); library(jsonlite)
})
cat("survival", as.character(packageVersion("survival")),
    "riskRegression", as.character(packageVersion("riskRegression")), "\n")
fx <- "tests/reference/fixtures"
d <- survival::gbsg
write.csv(d, file.path(fx, "adjust_gbsg.csv"), row.names = FALSE)

conf <- c("age", "meno", "size", "grade", "nodes", "pgr", "er")
times <- c(365, 1095, 1825)
tau <- 1825
ps_fit <- glm(reformulate(conf, "hormon"), family = binomial, data = d)
ps <- unname(fitted(ps_fit))
a <- d$hormon
pa <- mean(a)

wts <- list(
  ATE = ifelse(a == 1, 1 / ps, 1 / (1 - ps)),
  ATE_stabilized = ifelse(a == 1, pa / ps, (1 - pa) / (1 - ps)),
  ATT = ifelse(a == 1, 1, ps / (1 - ps)),
  ATO = ifelse(a == 1, 1 - ps, ps)
)

iptw <- lapply(names(wts), function(nm) {
  w <- wts[[nm]]
  dd <- d; dd$w <- w
  cf <- coxph(Surv(rfstime, status) ~ hormon, data = dd, weights = w, robust = TRUE, ties = "efron")
  km <- survfit(Surv(rfstime, status) ~ hormon, data = dd, weights = w, robust = TRUE)
  s0 <- summary(km[1], times = times); s1 <- summary(km[2], times = times)
  rm <- summary(km, rmean = tau)$table[, "rmean"]
  list(name = nm, weights_head = head(w, 10), weight_sum = sum(w),
       coef = unname(coef(cf)), se_robust = unname(sqrt(diag(cf$var))),
       se_naive = unname(sqrt(diag(cf$naive.var))),
       surv0 = s0$surv, se0 = s0$std.err, surv1 = s1$surv, se1 = s1$std.err,
       rmst0 = unname(rm[1]), rmst1 = unname(rm[2]), rmst_diff = unname(rm[2] - rm[1]))
})
names(iptw) <- names(wts)

f_event <- as.formula(paste("Surv(rfstime, status) ~ hormon +", paste(conf, collapse = " + ")))
f_cens <- as.formula(paste("Surv(rfstime, status == 0) ~ hormon +", paste(conf, collapse = " + ")))
ev <- coxph(f_event, data = d, x = TRUE, y = TRUE, ties = "efron")
ce <- coxph(f_cens, data = d, x = TRUE, y = TRUE, ties = "efron")
dfac <- d; dfac$hormon <- factor(dfac$hormon)
ev_f <- coxph(f_event, data = dfac, x = TRUE, y = TRUE, ties = "efron")
ce_f <- coxph(f_cens, data = dfac, x = TRUE, y = TRUE, ties = "efron")
tr_f <- glm(reformulate(conf, "hormon"), family = binomial, data = dfac)

tidy_ate <- function(x) {
  mr <- as.data.frame(x$meanRisk); dr <- as.data.frame(x$diffRisk)
  list(meanRisk = mr[, intersect(c("estimator", "time", "treatment", "estimate", "se"), names(mr))],
       diffRisk = dr[, intersect(c("estimator", "time", "A", "B", "estimate", "se"), names(dr))])
}
g <- ate(event = ev_f, treatment = "hormon", data = dfac, times = times,
         estimator = "GFORMULA", se = TRUE, verbose = FALSE)
ai <- ate(event = ev_f, treatment = tr_f, censor = ce_f, data = dfac, times = times,
          estimator = "AIPTW", se = TRUE, verbose = FALSE)

# riskRegression 2022.11.28 treats each censored subject's time as a separate
# jump of the censoring martingale, so m subjects censored at the same time
# count that time's increment m times. causal_hcc uses one increment per
# distinct time. To compare like with like, the AIPTW reference is also
# computed on gbsg with tied censoring times separated by 0.001 day
# (adjust_gbsg_untied.csv): there both conventions coincide.
du <- d
cz <- which(du$status == 0)
k <- ave(du$rfstime[cz], du$rfstime[cz], FUN = seq_along) - 1
du$rfstime[cz] <- du$rfstime[cz] + 0.001 * k
write.csv(du, file.path(fx, "adjust_gbsg_untied.csv"), row.names = FALSE)
dfu <- du; dfu$hormon <- factor(dfu$hormon)
ev_u <- coxph(f_event, data = dfu, x = TRUE, y = TRUE, ties = "efron")
ce_u <- coxph(f_cens, data = dfu, x = TRUE, y = TRUE, ties = "efron")
tr_u <- glm(reformulate(conf, "hormon"), family = binomial, data = dfu)
ai_u <- ate(event = ev_u, treatment = tr_u, censor = ce_u, data = dfu, times = times,
            estimator = "AIPTW", se = TRUE, verbose = FALSE)
ai_u_known <- ate(event = ev_u, treatment = tr_u, censor = ce_u, data = dfu, times = times,
                  estimator = "AIPTW", se = TRUE, known.nuisance = TRUE, verbose = FALSE)
ce_arm <- coxph(Surv(rfstime, status == 0) ~ hormon, data = dfu, x = TRUE, y = TRUE, ties = "efron")
ai_u_arm <- ate(event = ev_u, treatment = tr_u, censor = ce_arm, data = dfu, times = times,
                estimator = "AIPTW", se = TRUE, known.nuisance = TRUE, verbose = FALSE)

out <- list(
  n = nrow(d), times = times, tau = tau, confounders = conf,
  ps_coef = unname(coef(ps_fit)), ps_head = head(ps, 10), ps_min = min(ps), ps_max = max(ps),
  iptw = iptw,
  outcome_cox = list(coef = unname(coef(ev)), names = names(coef(ev))),
  censor_cox = list(coef = unname(coef(ce)), names = names(coef(ce))),
  gformula = tidy_ate(g), aiptw = tidy_ate(ai),
  aiptw_untied = tidy_ate(ai_u), aiptw_untied_known_nuisance = tidy_ate(ai_u_known),
  aiptw_untied_censor_arm = tidy_ate(ai_u_arm)
)
write_json(out, file.path(fx, "adjust_gbsg.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)

for (spec in list(c("nn1", "subclass"), c("nn2r", "pid"))) {
  psm_file <- file.path(fx, paste0("adjust_psm_", spec[1], ".csv"))
  if (!file.exists(psm_file)) next
  m <- read.csv(psm_file)
  m$cl <- m[[spec[2]]]
  cf <- coxph(Surv(rfstime, status) ~ hormon, data = m, weights = match_weight,
              cluster = cl, ties = "efron")
  km <- survfit(Surv(rfstime, status) ~ hormon, data = m, weights = match_weight, cluster = cl)
  s0 <- summary(km[1], times = times); s1 <- summary(km[2], times = times)
  rm <- summary(km, rmean = tau)$table[, "rmean"]
  write_json(list(n_rows = nrow(m), cluster = spec[2], coef = unname(coef(cf)),
                  se_robust = unname(sqrt(diag(cf$var))),
                  surv0 = s0$surv, se0 = s0$std.err, surv1 = s1$surv, se1 = s1$std.err,
                  rmst_diff = unname(rm[2] - rm[1])),
             file.path(fx, paste0("adjust_psm_", spec[1], ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
}
