# Reference values for causal_hcc.core.cmprsk.finegray / fine_gray with `artificial` and
# `censoring_weighted` (issue 21: the Fine-Gray censoring distribution of the real censoring only).
#
# Run from the repository root:
#   Rscript tests/reference/core_cmprsk_artificial.R
# Reads tests/reference/fixtures/core_mgus2_cr.csv (written by core_cmprsk.R); marks the censored
# rows with id %% 5 < 2 as artificially censored; writes tests/reference/fixtures/core_cmprsk_artificial.json.
# The by-hand construction (cmprsk_real_censoring.R) is first checked against finegray() + coxph
# with no artificial censoring.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
source("tests/reference/cmprsk_real_censoring.R")
fx <- "tests/reference/fixtures"
d <- read.csv(file.path(fx, "core_mgus2_cr.csv"))
d$art <- d$event == 0 & d$id %% 5 < 2
cat("survival", as.character(packageVersion("survival")), " artificial:", sum(d$art), "of", sum(d$event == 0),
    "censored\n")
fit <- function(r, strata = FALSE) {
  r <- merge(r, d[, c("age", "sex", "hgb")], by.x = "row", by.y = 0, sort = FALSE)
  f <- if (strata) coxph(Surv(a, b, status) ~ age + sex + hgb + strata(strat), data = r, weights = wt, cluster = id)
       else coxph(Surv(a, b, status) ~ age + sex + hgb, data = r, weights = wt, cluster = id)
  list(coef = unname(coef(f)), var = unname(f$var))
}
d$row <- seq_len(nrow(d))
z <- rep(0, nrow(d))
none <- rep(FALSE, nrow(d))

# the by-hand construction without artificial censoring is finegray() + coxph
fg <- finegray(Surv(etime, factor(event)) ~ ., data = d[, c("id", "etime", "event", "age", "sex", "hgb")], etype = "1")
ref <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fg, weights = fgwt, cluster = id)
mine <- fit(fg_real(z, d$etime, d$event, d$id, rep(1, nrow(d)), none))
stopifnot(isTRUE(all.equal(mine$coef, unname(coef(ref)), tolerance = 1e-10)),
          isTRUE(all.equal(mine$var, unname(ref$var), tolerance = 1e-10)))
fgw <- finegray(Surv(etime, factor(event)) ~ ., data = d[, c("id", "etime", "event", "age", "sex", "hgb", "w")],
                etype = "1", weights = w)
refw <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + hgb, data = fgw, weights = fgwt, cluster = id)
minew <- fit(fg_real(z, d$etime, d$event, d$id, d$w, none))
stopifnot(isTRUE(all.equal(minew$coef, unname(coef(refw)), tolerance = 1e-10)))

case <- function(w, weighted, strata = NULL) {
  r <- fg_real(z, d$etime, d$event, d$id, w, d$art, weighted = weighted, strata = strata)
  res <- fit(r, strata = !is.null(strata))
  ext <- r[r$row %in% which(d$event == 2) & r$a >= d$etime[r$row], ]
  res$rows <- list(id = ext$id, stop = ext$b, wt = ext$wt)
  res$G <- unname(attr(r, "G"))
  res
}
out <- list(
  art = case(rep(1, nrow(d)), FALSE),                 # G of the real censoring, unweighted
  art_weights = case(d$w, FALSE),                      # case weights, G unweighted
  art_weighted_G = case(d$w, TRUE),                    # case weights, G weighted
  art_strata = case(rep(1, nrow(d)), FALSE, d$strat),  # G per stratum
  r_default = list(coef = unname(coef(ref)), var = unname(ref$var)))
# the weighted G equals survfit's weighted Kaplan-Meier of the real censorings (events moved just before
# their time so that they leave its risk set first, as finegray() does)
eps <- 1e-7
sf <- survfit(Surv(etime - eps * (event != 0), event == 0 & !art) ~ 1, data = d, weights = w, timefix = FALSE)
g <- out$art_weighted_G$G[[1]]
stopifnot(isTRUE(all.equal(summary(sf, times = g$time)$surv, g$surv, tolerance = 1e-10)))
write_json(out, file.path(fx, "core_cmprsk_artificial.json"), digits = NA, auto_unbox = TRUE, matrix = "rowmajor",
           na = "null", pretty = FALSE)
