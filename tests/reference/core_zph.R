# Reference values for causal_hcc.core.zph (R survival::cox.zph, survival 3.x).
#
# Run from the repository root:  Rscript tests/reference/core_zph.R
# Reads the data sets written by tests/reference/core_cox.R
# (tests/reference/fixtures/core_<name>.csv) and writes cox.zph's table,
# transformed times, scaled Schoenfeld residuals, var and plot.cox.zph's
# smooth (df = 4, nsmo = 40) to tests/reference/fixtures/core_zph.json.
# CI does not run R: tests/core/test_zph.py reads the fixture.
suppressPackageStartupMessages({
  library(survival)
  library(splines)
  library(jsonlite)
})
stopifnot(packageVersion("survival") >= "3.0")
fx <- "tests/reference/fixtures"
rd <- function(name) read.csv(file.path(fx, paste0("core_", name, ".csv")))
vet <- rd("veteran")
lung <- rd("lung")
hrt <- rd("heart")
gb <- rd("gbsg")

# plot.cox.zph's smooth for variable i (the lines that compute yhat and the band)
zph_smooth <- function(x, i, df = 4, nsmo = 40) {
  xx <- x$x
  y <- x$y[, i]
  pred.x <- seq(from = min(xx), to = max(xx), length = nsmo)
  lmat <- ns(c(pred.x, xx), df = df, intercept = TRUE)
  pmat <- lmat[1:nsmo, ]
  xmat <- lmat[-(1:nsmo), ]
  keep <- !is.na(y)
  qmat <- qr(xmat[keep, ])
  yhat <- pmat %*% qr.coef(qmat, y[keep])
  bk <- backsolve(qmat$qr[1:df, 1:df], diag(df))
  xtx <- bk %*% t(bk)
  seval <- ((pmat %*% xtx) * pmat) %*% rep(1, df)
  band <- 2 * sqrt(x$var[i, i] * seval)
  list(x = pred.x, beta = drop(yhat), lower = drop(yhat - band), upper = drop(yhat + band))
}

one <- function(fit, transform = "km", columns, terms, data, entry = NULL, weights = NULL,
                strata = NULL, ties = "efron", time = "time", event = "status") {
  z <- cox.zph(fit, transform = transform)
  tab <- z$table
  list(
    data = data, columns = columns, terms = terms, transform = transform, ties = ties,
    time = time, event = event, entry = entry, weights = weights, strata = strata,
    coef = unname(coef(fit)),
    table = list(term = rownames(tab), chisq = unname(tab[, "chisq"]),
                 df = unname(tab[, "df"]), p = unname(tab[, "p"])),
    x = unname(z$x), event_time = unname(z$time),
    y = unname(z$y), var = unname(z$var),
    smooth = zph_smooth(z, 1)
  )
}

lung$w <- as.numeric(lung$w)
out <- list()

f <- coxph(Surv(time, status) ~ trt2 + karno + factor(cellcode), data = vet)
out$veteran_factor <- one(f, columns = c("trt2", "karno", "cell_smallcell", "cell_adeno", "cell_large"),
                          terms = list(trt2 = 0, karno = 1, `factor(cellcode)` = 2:4), data = "veteran")

# one binary "treatment": the veteran trial arm, and Karnofsky >= 60 (a known PH violation)
f <- coxph(Surv(time, status) ~ trt2, data = vet)
out$veteran_trt <- one(f, columns = "trt2", terms = list(trt2 = 0), data = "veteran")
vet$karno60 <- as.integer(vet$karno >= 60)
f <- coxph(Surv(time, status) ~ karno60 + trt2, data = vet)
out$veteran_karno60 <- one(f, columns = c("karno60", "trt2"), terms = list(karno60 = 0, trt2 = 1),
                           data = "veteran")

f <- coxph(Surv(time, status) ~ trt2 + karno + age, data = vet, ties = "breslow")
out$veteran_breslow <- one(f, columns = c("trt2", "karno", "age"),
                           terms = list(trt2 = 0, karno = 1, age = 2), data = "veteran", ties = "breslow")
for (tr in c("identity", "log", "rank")) {
  f <- coxph(Surv(time, status) ~ trt2 + karno + age, data = vet)
  out[[paste0("veteran_", tr)]] <- one(f, transform = tr, columns = c("trt2", "karno", "age"),
                                       terms = list(trt2 = 0, karno = 1, age = 2), data = "veteran")
}

f <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung)
out$lung <- one(f, columns = c("age", "sex", "ph.ecog"), terms = list(age = 0, sex = 1, ph.ecog = 2),
                data = "lung")

f <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lung)
out$lung_strata <- one(f, columns = c("age", "ph.ecog"), terms = list(age = 0, ph.ecog = 1),
                       data = "lung", strata = "sex")

# non-integer case weights: coxph is robust by default; cox.zph uses the model information
f <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, weights = w)
stopifnot(!is.null(f$naive.var))
out$lung_weighted <- one(f, columns = c("age", "sex", "ph.ecog"), terms = list(age = 0, sex = 1, ph.ecog = 2),
                         data = "lung", weights = "w")

# left truncation, weights and strata: (entry, time] rows
f <- coxph(Surv(entry, time, status) ~ age + ph.ecog + strata(sex), data = lung, weights = w)
out$lung_entry_weighted_strata <- one(f, columns = c("age", "ph.ecog"), terms = list(age = 0, ph.ecog = 1),
                                      data = "lung", entry = "entry", weights = "w", strata = "sex")

# counting process (start, stop]: Stanford heart transplant, time-varying transplant
f <- coxph(Surv(start, stop, event) ~ age + surgery + transplant, data = hrt)
out$heart <- one(f, columns = c("age", "surgery", "transplant"),
                 terms = list(age = 0, surgery = 1, transplant = 2), data = "heart",
                 entry = "start", time = "stop", event = "event")
# with cluster(id) the fit is robust; cox.zph's numbers do not change
fc <- coxph(Surv(start, stop, event) ~ age + surgery + transplant, data = hrt, cluster = id)
zc <- cox.zph(fc)
stopifnot(isTRUE(all.equal(zc$table, cox.zph(f)$table, tolerance = 1e-12)))
out$heart_breslow <- one(coxph(Surv(start, stop, event) ~ age + surgery + transplant, data = hrt,
                               ties = "breslow"),
                         columns = c("age", "surgery", "transplant"),
                         terms = list(age = 0, surgery = 1, transplant = 2), data = "heart",
                         entry = "start", time = "stop", event = "event", ties = "breslow")

# weighted, larger: gbsg with non-integer weights (IPTW-like) and a cluster
f <- coxph(Surv(rfstime, status) ~ hormon + age + size + nodes, data = gb, weights = w, cluster = pid)
out$gbsg_weighted <- one(f, columns = c("hormon", "age", "size", "nodes"),
                         terms = list(hormon = 0, age = 1, size = 2, nodes = 3), data = "gbsg",
                         weights = "w", time = "rfstime")

out$meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"), file.path(fx, "core_zph.json"))
cat("wrote", file.path(fx, "core_zph.json"), "\n")
