# Reference numbers for the foundation strategies (naive, multivariable, paper)
# on survival::veteran: treatment = trt (test vs standard chemotherapy).
# Run from tests/reference:  Rscript foundation_strategies.R
# Writes fixtures/foundation_veteran.csv (the data) and fixtures/foundation_veteran.json.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
d <- veteran
d$id <- seq_len(nrow(d))
d$trt01 <- d$trt - 1L
d$prior10 <- as.integer(d$prior == 10)
d$celltype <- as.character(d$celltype)
write.csv(d[, c("id", "time", "status", "trt01", "karno", "age", "prior10", "celltype", "diagtime")],
          "fixtures/foundation_veteran.csv", row.names = FALSE)
# our Cohort takes the most frequent level as reference: smallcell (48 patients)
d$celltype <- relevel(factor(d$celltype), ref = "smallcell")
times <- c(90, 180); tau <- 365
naive_cox <- coxph(Surv(time, status) ~ trt01, data = d, ties = "efron")
km <- survfit(Surv(time, status) ~ trt01, data = d)
sk <- summary(km, times = times)
s0 <- sk$surv[sk$strata == "trt01=0"]; s1 <- sk$surv[sk$strata == "trt01=1"]
e0 <- sk$std.err[sk$strata == "trt01=0"]; e1 <- sk$std.err[sk$strata == "trt01=1"]
tab <- summary(km, rmean = tau)$table
lr <- survdiff(Surv(time, status) ~ trt01, data = d)
mv <- coxph(Surv(time, status) ~ trt01 + karno + age + prior10 + celltype, data = d, ties = "efron")
# paper: univariate Cox per (expanded) variable, multivariable on p < 0.05
vars <- list(karno = d$karno, age = d$age, prior10 = d$prior10,
             "celltype=adeno" = as.integer(d$celltype == "adeno"),
             "celltype=large" = as.integer(d$celltype == "large"),
             "celltype=squamous" = as.integer(d$celltype == "squamous"))
uni <- lapply(names(vars), function(v) {
  f <- coxph(Surv(d$time, d$status) ~ vars[[v]], ties = "efron")
  s <- summary(f)$coefficients
  list(variable = v, coef = unname(coef(f)), se = unname(sqrt(diag(vcov(f)))), p = unname(s[1, 5]))
})
names(uni) <- names(vars)
sel <- names(vars)[sapply(uni, function(u) u$p < 0.05)]
X <- as.data.frame(vars[sel]); names(X) <- make.names(sel)
pm <- coxph(Surv(d$time, d$status) ~ d$trt01 + ., data = X, ties = "efron")
out <- list(
  naive = list(coef = unname(coef(naive_cox)), se = unname(sqrt(vcov(naive_cox)[1, 1])),
               surv0 = s0, surv1 = s1, se0 = e0, se1 = e1, times = times,
               rmean0 = unname(tab[1, "rmean"]), rmean1 = unname(tab[2, "rmean"]),
               se_rmean0 = unname(tab[1, "se(rmean)"]), se_rmean1 = unname(tab[2, "se(rmean)"]),
               median0 = unname(tab[1, "median"]), median1 = unname(tab[2, "median"]),
               logrank_chisq = unname(lr$chisq)),
  multivariable = list(coef = unname(coef(mv)[1]), se = unname(sqrt(vcov(mv)[1, 1]))),
  paper = list(univariate = uni, selected = sel, coef = unname(coef(pm)[1]), se = unname(sqrt(vcov(pm)[1, 1])),
               uni_trt_coef = unname(coef(naive_cox)), uni_trt_se = unname(sqrt(vcov(naive_cox)[1, 1]))),
  tau = tau, R = R.version.string, survival = as.character(packageVersion("survival"))
)
write_json(out, "fixtures/foundation_veteran.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
