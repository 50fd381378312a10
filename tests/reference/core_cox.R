# Reference values for causal_hcc.core (coxph, survfit/KM, survdiff, RMST).
#
# Run from the repository root:  Rscript tests/reference/core_cox.R
# Writes the public data sets of the survival package as CSV
# (tests/reference/fixtures/core_<name>.csv, numeric columns only, model
# matrices already expanded) and R's results as JSON
# (tests/reference/fixtures/core_cox.json, core_km.json, core_logrank.json).
# CI does not run R: the Python tests read these fixtures.
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})
stopifnot(packageVersion("survival") >= "3.5")
fx <- "tests/reference/fixtures"
dir.create(fx, showWarnings = FALSE, recursive = TRUE)
dir.create("benchmarks/data", showWarnings = FALSE, recursive = TRUE)

wcsv <- function(d, name) {
  write.csv(d, file.path(fx, paste0("core_", name, ".csv")), row.names = FALSE)
}

## ---------------------------------------------------------------- data ----
lung2 <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
lung2$status <- as.integer(lung2$status == 2)
# deterministic left-truncation times (entry < time) and non-integer weights
lung2$entry <- floor(lung2$time * ((seq_len(nrow(lung2)) %% 4) / 5))
lung2$w <- 0.5 + (seq_len(nrow(lung2)) %% 5) / 4
rownames(lung2) <- NULL
wcsv(lung2, "lung")

vet <- veteran
vet$cell_smallcell <- as.integer(vet$celltype == "smallcell")
vet$cell_adeno <- as.integer(vet$celltype == "adeno")
vet$cell_large <- as.integer(vet$celltype == "large")
vet$cellcode <- as.integer(vet$celltype)
vet$trt2 <- as.integer(vet$trt == 2)
vet <- vet[, c("time", "status", "trt2", "karno", "diagtime", "age", "prior",
               "cell_smallcell", "cell_adeno", "cell_large", "cellcode")]
wcsv(vet, "veteran")

gb <- gbsg[, c("pid", "rfstime", "status", "hormon", "age", "meno", "size",
               "grade", "nodes", "pgr", "er")]
gb$w <- 0.5 + (seq_len(nrow(gb)) %% 7) / 3
rownames(gb) <- NULL
wcsv(gb, "gbsg")

rot <- rotterdam
rot$size2050 <- as.integer(rot$size == "20-50")
rot$size50 <- as.integer(rot$size == ">50")
rot <- rot[, c("pid", "rtime", "recur", "dtime", "death", "chemo", "hormon",
               "age", "meno", "nodes", "size2050", "size50", "grade")]
rot$w <- 0.25 + (rot$pid %% 11) / 5
rownames(rot) <- NULL
wcsv(rot, "rotterdam")

hrt <- heart
hrt$transplant <- as.integer(as.character(hrt$transplant))
wcsv(hrt, "heart")

col <- na.omit(colon[, c("id", "time", "status", "rx", "sex", "age", "nodes",
                         "etype", "extent")])
col$rx_lev <- as.integer(col$rx == "Lev")
col$rx_lev5fu <- as.integer(col$rx == "Lev+5FU")
col <- col[, c("id", "time", "status", "rx_lev", "rx_lev5fu", "sex", "age",
               "nodes", "etype", "extent")]
rownames(col) <- NULL
wcsv(col, "colon")

# benchmark copies (same CSVs)
write.csv(gb, "benchmarks/data/gbsg.csv", row.names = FALSE)
write.csv(rot, "benchmarks/data/rotterdam.csv", row.names = FALSE)

datasets <- list(lung = lung2, veteran = vet, gbsg = gb, rotterdam = rot,
                 heart = hrt, colon = col)

## ----------------------------------------------------------------- cox ----
# each case: data, time, event, entry, X columns, weights, strata, cluster,
# ties, robust (NULL = R default)
cases <- list(
  list(name = "lung_efron", data = "lung", time = "time", event = "status",
       x = c("age", "sex", "ph.ecog"), ties = "efron"),
  list(name = "lung_breslow", data = "lung", time = "time", event = "status",
       x = c("age", "sex", "ph.ecog"), ties = "breslow"),
  list(name = "lung_entry_efron", data = "lung", time = "time", event = "status",
       entry = "entry", x = c("age", "sex", "ph.ecog"), ties = "efron"),
  list(name = "lung_weighted_entry_breslow", data = "lung", time = "time",
       event = "status", entry = "entry", weights = "w",
       x = c("age", "sex", "ph.ecog"), ties = "breslow"),
  list(name = "veteran_efron", data = "veteran", time = "time", event = "status",
       x = c("trt2", "karno", "diagtime", "age", "prior", "cell_smallcell",
             "cell_adeno", "cell_large"), ties = "efron"),
  list(name = "veteran_strata_efron", data = "veteran", time = "time",
       event = "status", x = c("trt2", "karno", "age", "prior"),
       strata = "cellcode", ties = "efron"),
  list(name = "veteran_strata_breslow", data = "veteran", time = "time",
       event = "status", x = c("trt2", "karno", "age", "prior"),
       strata = "cellcode", ties = "breslow"),
  list(name = "gbsg_weighted_efron", data = "gbsg", time = "rfstime",
       event = "status", x = c("hormon", "age", "size", "grade", "nodes"),
       weights = "w", ties = "efron"),
  list(name = "gbsg_weighted_breslow_norobust", data = "gbsg", time = "rfstime",
       event = "status", x = c("hormon", "age", "size", "grade", "nodes"),
       weights = "w", ties = "breslow", robust = FALSE),
  list(name = "gbsg_robust_unweighted", data = "gbsg", time = "rfstime",
       event = "status", x = c("hormon", "age", "size", "grade", "nodes"),
       ties = "efron", robust = TRUE),
  list(name = "rotterdam_weighted_strata", data = "rotterdam", time = "rtime",
       event = "recur", x = c("chemo", "hormon", "age", "nodes", "size2050",
                               "size50"),
       weights = "w", strata = "meno", ties = "efron"),
  list(name = "heart_efron_cluster", data = "heart", time = "stop",
       event = "event", entry = "start", x = c("age", "year", "surgery",
                                               "transplant"),
       cluster = "id", ties = "efron"),
  list(name = "heart_breslow", data = "heart", time = "stop", event = "event",
       entry = "start", x = c("age", "year", "surgery", "transplant"),
       ties = "breslow"),
  list(name = "colon_cluster_efron", data = "colon", time = "time",
       event = "status", x = c("rx_lev", "rx_lev5fu", "sex", "age", "nodes"),
       cluster = "id", ties = "efron"),
  list(name = "colon_cluster_strata_weighted", data = "colon", time = "time",
       event = "status", x = c("rx_lev", "rx_lev5fu", "sex", "age", "nodes"),
       cluster = "id", strata = "etype", weights = "extent", ties = "efron")
)

pred_times <- list(lung = c(100, 365, 500), veteran = c(30, 100),
                   gbsg = c(365, 1000, 2000), rotterdam = c(1000, 3000),
                   heart = c(50, 200, 1000), colon = c(500, 1500))

cox_out <- list()
for (cs in cases) {
  d <- datasets[[cs$data]]
  lhs <- if (is.null(cs$entry)) sprintf("Surv(%s, %s)", cs$time, cs$event) else
    sprintf("Surv(%s, %s, %s)", cs$entry, cs$time, cs$event)
  rhs <- paste(paste0("`", cs$x, "`"), collapse = " + ")
  if (!is.null(cs$strata)) rhs <- paste0(rhs, " + strata(", cs$strata, ")")
  f <- as.formula(paste(lhs, "~", rhs))
  args <- list(formula = f, data = d, ties = cs$ties)
  if (!is.null(cs$weights)) args$weights <- d[[cs$weights]]
  if (!is.null(cs$cluster)) args$cluster <- d[[cs$cluster]]
  if (!is.null(cs$robust)) args$robust <- cs$robust
  fit <- do.call(coxph, args)
  s <- summary(fit)
  robust <- !is.null(fit$naive.var)
  bh <- basehaz(fit, centered = FALSE)
  nd <- as.data.frame(matrix(c(0.5, 1.5) %o% colMeans(d[, cs$x, drop = FALSE]),
                             nrow = 2))
  names(nd) <- cs$x
  pr <- NULL
  if (is.null(cs$strata)) {
    sf <- survfit(fit, newdata = nd)
    ss <- summary(sf, times = pred_times[[cs$data]], extend = TRUE)
    pr <- list(newdata = unname(as.matrix(nd)), times = ss$time,
               surv = unname(ss$surv))
  }
  cox_out[[cs$name]] <- list(
    spec = cs[setdiff(names(cs), "name")],
    coef = unname(fit$coefficients),
    var = unname(fit$var),
    naive_var = if (robust) unname(fit$naive.var) else NULL,
    robust = robust,
    loglik = fit$loglik,
    score_test = unname(fit$score),
    wald_test = unname(fit$wald.test),
    lr_test = unname(s$logtest[1]),
    robust_score_test = if (robust) unname(fit$rscore) else NULL,
    n = fit$n, nevent = fit$nevent, iter = fit$iter,
    basehaz = list(time = bh$time, hazard = bh$hazard,
                   strata = if (is.null(bh$strata)) NULL else as.integer(bh$strata)),
    predict = pr
  )
}
write_json(cox_out, file.path(fx, "core_cox.json"), digits = NA, auto_unbox = TRUE,
           null = "null", pretty = FALSE)

## ------------------------------------------------------------------ km ----
km_one <- function(fit, tau, infl_times = NULL) {
  tab <- summary(fit, rmean = tau)$table
  res <- list(time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
              n_censor = fit$n.censor, surv = fit$surv, std_err = fit$std.err,
              logse = isTRUE(fit$logse), lower = fit$lower, upper = fit$upper,
              median = unname(tab["median"]),
              median_lower = unname(tab["0.95LCL"]),
              median_upper = unname(tab["0.95UCL"]),
              rmean = unname(tab["rmean"]), se_rmean = unname(tab["se(rmean)"]),
              tau = tau)
  res
}
km_out <- list()
for (ct in c("log", "log-log", "plain")) {
  f <- survfit(Surv(time, status) ~ 1, data = lung2, conf.type = ct)
  km_out[[paste0("lung_", ct)]] <- c(list(spec = list(data = "lung", time = "time",
      event = "status", conf_type = ct)), km_one(f, 500))
}
f <- survfit(Surv(time, status) ~ 1, data = vet)
km_out[["veteran"]] <- c(list(spec = list(data = "veteran", time = "time",
    event = "status", conf_type = "log")), km_one(f, 200))
f <- survfit(Surv(entry, time, status) ~ 1, data = lung2)
km_out[["lung_entry"]] <- c(list(spec = list(data = "lung", time = "time",
    event = "status", entry = "entry", conf_type = "log")), km_one(f, 500))
# weighted (non-integer weights): R's default is the IJ (robust) variance
f <- survfit(Surv(rfstime, status) ~ 1, data = gb, weights = w)
stopifnot(!f$logse)
km_out[["gbsg_weighted"]] <- c(list(spec = list(data = "gbsg", time = "rfstime",
    event = "status", weights = "w", conf_type = "log")), km_one(f, 1500))
f <- survfit(Surv(entry, time, status) ~ 1, data = lung2, weights = w)
km_out[["lung_entry_weighted"]] <- c(list(spec = list(data = "lung", time = "time",
    event = "status", entry = "entry", weights = "w", conf_type = "log")),
    km_one(f, 500))
f <- survfit(Surv(time, status) ~ 1, data = col, cluster = id)
km_out[["colon_cluster"]] <- c(list(spec = list(data = "colon", time = "time",
    event = "status", cluster = "id", conf_type = "log")), km_one(f, 1500))
f <- survfit(Surv(time, status) ~ 1, data = col, cluster = id, weights = extent)
km_out[["colon_cluster_weighted"]] <- c(list(spec = list(data = "colon",
    time = "time", event = "status", cluster = "id", weights = "extent",
    conf_type = "plain")), km_one(update(f, conf.type = "plain"), 1500))
f <- survfit(Surv(time, status) ~ 1, data = lung2, robust = TRUE)
km_out[["lung_ij_unweighted"]] <- c(list(spec = list(data = "lung", time = "time",
    event = "status", variance = "ij", conf_type = "log")), km_one(f, 500))
# per-subject influence of S(t) (weighted, R's influence.surv), at chosen times
f <- survfit(Surv(rfstime, status) ~ 1, data = gb, weights = w, influence = TRUE)
itimes <- c(365, 1000, 2000)
idx <- findInterval(itimes, f$time)
km_out[["gbsg_weighted_influence"]] <- list(
  spec = list(data = "gbsg", time = "rfstime", event = "status", weights = "w"),
  times = itimes, influence = unname(f$influence.surv[, idx]))
write_json(km_out, file.path(fx, "core_km.json"), digits = NA, auto_unbox = TRUE,
           null = "null", na = "null")

## ------------------------------------------------------------- logrank ----
lr_one <- function(sd) {
  list(chisq = sd$chisq, df = length(sd$n) - 1,
       p = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE),
       observed = unname(as.numeric(sd$obs)), expected = unname(as.numeric(sd$exp)),
       var = unname(sd$var))
}
lr_out <- list(
  lung_sex = c(list(spec = list(data = "lung", time = "time", event = "status",
                                group = "sex")),
               lr_one(survdiff(Surv(time, status) ~ sex, data = lung2))),
  veteran_cell = c(list(spec = list(data = "veteran", time = "time",
                                    event = "status", group = "cellcode")),
                   lr_one(survdiff(Surv(time, status) ~ cellcode, data = vet))),
  veteran_trt_strata = c(list(spec = list(data = "veteran", time = "time",
      event = "status", group = "trt2", strata = "cellcode")),
      lr_one(survdiff(Surv(time, status) ~ trt2 + strata(cellcode), data = vet)))
)
write_json(lr_out, file.path(fx, "core_logrank.json"), digits = NA,
           auto_unbox = TRUE, null = "null")
cat("done\n")
