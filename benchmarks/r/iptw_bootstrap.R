# Per-replicate time of the IPTW bootstrap pipeline in R (survival 3.x):
# resample patients, logistic propensity score (glm), ATE weights, weighted
# Cox with robust (sandwich) SE, weighted Kaplan-Meier per arm with the
# infinitesimal-jackknife (robust) variance.
# Usage: Rscript iptw_bootstrap.R DATA.csv TIME EVENT TREATMENT "conf1,conf2,..." B [categorical,...]
# Prints one JSON line: {"ms_per_replicate": ..., "replicates": B, "n": n, "hr": ...}
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
tcol <- args[2]; ecol <- args[3]; acol <- args[4]
conf <- strsplit(args[5], ",")[[1]]
B <- as.integer(args[6])
cat_vars <- if (length(args) >= 7 && nzchar(args[7])) strsplit(args[7], ",")[[1]] else character(0)
for (v in cat_vars) d[[v]] <- factor(d[[v]])
dat <- data.frame(time = d[[tcol]], event = d[[ecol]], a = as.integer(d[[acol]] == max(d[[acol]])), d[conf])
n <- nrow(dat)
ps_formula <- as.formula(paste("a ~", paste(conf, collapse = " + ")))
one <- function(dd) {
  dd$id <- seq_len(nrow(dd))
  ps <- fitted(glm(ps_formula, family = binomial(), data = dd))
  dd$w <- ifelse(dd$a == 1, 1 / ps, 1 / (1 - ps))
  cf <- coxph(Surv(time, event) ~ a, data = dd, weights = w, robust = TRUE, ties = "efron")
  km <- survfit(Surv(time, event) ~ a, data = dd, weights = w, id = id, robust = TRUE)
  c(coef(cf), sqrt(cf$var[1, 1]), length(km$surv))
}
point <- one(dat)
set.seed(1)
invisible(one(dat[sample.int(n, n, replace = TRUE), ]))  # warm-up
t0 <- proc.time()[["elapsed"]]
for (b in seq_len(B)) {
  r <- tryCatch(one(dat[sample.int(n, n, replace = TRUE), ]), error = function(e) NA)
}
el <- proc.time()[["elapsed"]] - t0
cat(sprintf('{"ms_per_replicate": %.4f, "replicates": %d, "n": %d, "hr": %.10f, "se_log_hr": %.10f, "R": "%s", "survival": "%s"}\n',
            1000 * el / B, B, n, exp(point[1]), point[2], R.version.string, as.character(packageVersion("survival"))))
