# The end-to-end analysis of bench_e2e.py in R (survival): read the CSV, naive Cox and KM,
# logistic propensity score, ATE weights, weighted Cox with robust SE, weighted KM with the
# robust (infinitesimal jackknife) variance. Usage: Rscript e2e_iptw.R FILE.csv
# Prints one JSON line: {"inner_s": ..., "hr": ..., "peak_rss_mb": ...}
t0 <- proc.time()[["elapsed"]]
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- if (requireNamespace("data.table", quietly = TRUE)) as.data.frame(data.table::fread(args[1])) else read.csv(args[1])
invisible(coxph(Surv(time, event) ~ treated, data = d, ties = "efron"))
invisible(survfit(Surv(time, event) ~ treated, data = d))
ps <- fitted(glm(treated ~ x1 + x2 + b1 + b2, family = binomial(), data = d))
d$w <- ifelse(d$treated == 1, 1 / ps, 1 / (1 - ps))
cf <- coxph(Surv(time, event) ~ treated, data = d, weights = w, robust = TRUE, ties = "efron")
km <- survfit(Surv(time, event) ~ treated, data = d, weights = w, id = id, robust = TRUE)
pt <- proc.time()
el <- pt[["elapsed"]] - t0
cpu <- pt[["user.self"]] + pt[["sys.self"]]
rss <- tryCatch({
  s <- readLines("/proc/self/status"); as.numeric(gsub("[^0-9]", "", s[grepl("^VmHWM", s)])) / 1024
}, error = function(e) NA)
cat(sprintf('{"inner_s": %.3f, "cpu_s": %.3f, "hr": %.10f, "peak_rss_mb": %.1f, "R": "%s"}\n', el, cpu,
            exp(coef(cf)[1]), rss, R.version.string))
