# Reference values for competing-risks analyses weighted for loss to follow-up (roles.censored; issues 19
# item 3(d) and 21), on the rows written by tests/outcome/make_competing_loss_fixture.py: the design's rows
# split at the weight grid, w = design weight x loss-to-follow-up IPC weight (stabilised), num = the
# stabilising numerator in w, art = 1 on a unit's last row when its censoring is artificial (a deviation
# from its strategy, or loss to follow-up: both stand behind the IPC weights).
#
# Run from the repository root:
#   .venv/bin/python tests/outcome/make_competing_loss_fixture.py
#   Rscript tests/reference/outcome_competing_loss.R
# Writes tests/reference/fixtures/outcome_competing_loss.json.
#
# Per design:
# * csc: coxph(Surv(start, stop, status == 1) ~ arm (+ strata(trial)), weights = w, cluster = patient);
# * cif: multi-state survfit(Surv(start, stop, factor(status)) ~ arm, weights = w, id = row) at 12 and 24
#   months (each row its own id: R's survfit would merge a unit's rows and keep one weight, see
#   outcome_competing.R), and the IJ SE with the influences summed within patient;
# * fg: Fine-Gray with the censoring distribution G of the real (administrative) censoring only, in the
#   weighted pseudo-population, and the unstabilised weights w / num (built by hand in
#   cmprsk_real_censoring.R), coxph(weights, cluster = patient).
suppressPackageStartupMessages({library(survival); library(jsonlite)})
fx <- "tests/reference/fixtures"
times <- c(12, 24)
source("tests/reference/cmprsk_real_censoring.R")
cox <- function(m) list(coef = unname(coef(m))[1], se = unname(sqrt(diag(m$var)))[1])

cif_arms <- function(x) {
  x$row <- seq_len(nrow(x))
  res <- list()
  for (a in 0:1) {
    d <- x[x$arm == a, ]
    f <- survfit(Surv(start, stop, factor(status)) ~ 1, data = d, weights = w, id = row, influence = TRUE)
    k <- which(f$states == "1")
    s <- summary(f, times = times)
    off <- dim(f$influence.pstate)[2] - length(f$time)
    col <- sapply(times, function(t) max(which(f$time <= t))) + off
    # R's influence.pstate is per id (here per row) and unweighted: std.err = sqrt(colSums((w * inf)^2)),
    # checked here
    inf <- d$w * f$influence.pstate[, col, k, drop = FALSE][, , 1]
    stopifnot(max(abs(sqrt(colSums(inf^2)) - s$std.err[, k])) < 1e-10)
    agg <- rowsum(inf, d$patient)
    res[[a + 1]] <- list(cif = unname(s$pstate[, k]), se_row = unname(s$std.err[, k]),
                         se_patient = unname(sqrt(colSums(agg^2))), patient = as.integer(rownames(agg)),
                         influence = unname(agg))
  }
  names(res) <- c("untreated", "treated")
  res
}

out <- list(times = times)
for (name in c("naive", "clone_censor", "sequential_trials_pp")) {
  x <- read.csv(file.path(fx, sprintf("outcome_competing_loss_%s.csv", name)))
  strat <- length(unique(x$trial)) > 1
  csc <- if (strat) coxph(Surv(start, stop, status == 1) ~ arm + strata(trial), data = x, weights = w,
                          cluster = patient)
         else coxph(Surv(start, stop, status == 1) ~ arm, data = x, weights = w, cluster = patient)
  r <- fg_real(x$start, x$stop, x$status, x$unit, x$w / x$num, x$art == 1, weighted = TRUE,
               strata = if (strat) x$trial else NULL)
  r$arm <- x$arm[r$row]; r$patient <- x$patient[r$row]
  fg <- if (strat) coxph(Surv(a, b, status) ~ arm + strata(strat), data = r, weights = wt, cluster = patient)
        else coxph(Surv(a, b, status) ~ arm, data = r, weights = wt, cluster = patient)
  # R's finegray() on the same rows, for contrast: G of every censoring (losses included), stabilised weights
  fgd <- finegray(Surv(start, stop, factor(status)) ~ ., data = x, etype = "1", id = unit, weights = w)
  fgr <- if (strat) coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + strata(trial), data = fgd, weights = fgwt,
                          cluster = patient)
         else coxph(Surv(fgstart, fgstop, fgstatus) ~ arm, data = fgd, weights = fgwt, cluster = patient)
  out[[name]] <- list(csc = cox(csc), fg = cox(fg), fg_rfinegray = cox(fgr), n_rows = nrow(x),
                      n_artificial = sum(x$art))
  if (!strat) out[[name]]$cif <- cif_arms(x)
}
write_json(out, file.path(fx, "outcome_competing_loss.json"), digits = NA, auto_unbox = TRUE, matrix = "rowmajor",
           na = "null", pretty = FALSE)
