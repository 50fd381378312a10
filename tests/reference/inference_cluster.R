# Reference values for cluster-robust inference and R's convergence rules
# (tests/test_inference_cluster.py). survival 3.5-3.
#  1. retinopathy (two eyes per patient, cluster = patient id): coxph(cluster = id)
#     unadjusted, adjusted and IPTW-weighted; survfit(cluster = id, influence = TRUE)
#     per arm; survival / RMST differences whose SE sums the two arms' influences
#     within cluster (computed here from R's influence.surv: RMST is linear in S).
#  2. Stanford heart transplant with an induced centre (id %% 12 + 1): tmerge rows
#     (time-varying transplant) and the landmark at day 30, coxph(cluster = centre).
#  3. Sequential-trial rows of the same data (exported by
#     tests/reference/inference_cluster_trials.py: run it first) fitted with
#     cluster = id and cluster = centre; the fit converges at beta ~ 2e-4, where
#     R's "coefficient may be infinite" check warns (it must not be an error).
#  4. A constructed near-null fit (inference_near_null.csv, weight 3.85... on row 24):
#     beta = 1e-4, R warns "coefficient may be infinite" and returns the fit.
# Run from the repo root: python tests/reference/inference_cluster_trials.py;
#                         Rscript tests/reference/inference_cluster.R
library(survival)
library(jsonlite)
out <- "tests/reference/fixtures"
res <- list(R = R.version.string, survival = as.character(packageVersion("survival")))

# ---- 1. retinopathy ----------------------------------------------------------
r <- retinopathy
r$eye_id <- r$id * 10L + r$trt   # `eye` is the treated eye (patient level); one row per eye
write.csv(r[, c("eye_id", "id", "futime", "status", "trt", "age", "risk")],
          file.path(out, "inference_retinopathy.csv"), row.names = FALSE)
times <- c(12, 36); tau <- 48

arm_parts <- function(f, k) {          # stratum k of survfit f: times, surv, std.err, influence
  n <- f$strata; hi <- cumsum(n); lo <- hi - n + 1
  ix <- lo[k]:hi[k]
  list(time = f$time[ix], surv = f$surv[ix], std.err = f$std.err[ix], infl = f$influence.surv[[k]])
}
at <- function(tt, tv) findInterval(tt, tv)       # last table time <= tt (0 = before the first)
rmst_infl <- function(p, tau) {                    # influence on integral_0^tau S
  keep <- p$time < tau
  w <- pmin(c(p$time[-1], Inf), tau) - p$time
  p$infl[, keep, drop = FALSE] %*% w[keep]
}
rmst_val <- function(p, tau) {
  tt <- c(0, p$time[p$time < tau], tau); s <- c(1, p$surv[p$time < tau])
  sum(diff(tt) * s)
}
km_block <- function(f) {
  p0 <- arm_parts(f, 1); p1 <- arm_parts(f, 2)
  ids <- union(rownames(p0$infl), rownames(p1$infl))
  al <- function(m) { a <- matrix(0, length(ids), ncol(m)); a[match(rownames(m), ids), ] <- m; a }
  I0 <- al(p0$infl); I1 <- al(p1$infl)
  sd <- sapply(times, function(t) sqrt(sum((I1[, at(t, p1$time)] - I0[, at(t, p0$time)])^2)))
  est <- sapply(times, function(t) p1$surv[at(t, p1$time)] - p0$surv[at(t, p0$time)])
  p0$infl <- I0; p1$infl <- I1
  r1 <- rmst_infl(p1, tau); r0 <- rmst_infl(p0, tau)
  list(times = times, surv_diff = est, surv_diff_se = sd, tau = tau,
       rmst_diff = rmst_val(p1, tau) - rmst_val(p0, tau), rmst_diff_se = sqrt(sum((r1 - r0)^2)),
       n_clusters = length(ids),
       curve0 = list(time = p0$time, surv = p0$surv, se = p0$std.err),
       curve1 = list(time = p1$time, surv = p1$surv, se = p1$std.err))
}
cox_block <- function(fit) list(names = names(coef(fit)), coef = unname(coef(fit)),
                                robust_se = unname(sqrt(diag(fit$var))),
                                naive_se = unname(sqrt(diag(fit$naive.var))))

f_naive <- coxph(Surv(futime, status) ~ trt, data = r, cluster = id)
k_naive <- survfit(Surv(futime, status) ~ trt, data = r, cluster = id, influence = TRUE)
f_multi <- coxph(Surv(futime, status) ~ trt + age + risk, data = r, cluster = id)
ps <- fitted(glm(trt ~ age + risk, family = binomial, data = r))
r$w <- ifelse(r$trt == 1, 1 / ps, 1 / (1 - ps))
f_iptw <- coxph(Surv(futime, status) ~ trt, data = r, weights = w, cluster = id)
k_iptw <- survfit(Surv(futime, status) ~ trt, data = r, weights = w, cluster = id, influence = TRUE)
res$retinopathy <- list(
  naive = c(cox_block(f_naive), km_block(k_naive)),
  multivariable = cox_block(f_multi),
  iptw = c(cox_block(f_iptw), km_block(k_iptw), list(ps = unname(ps))))

# ---- 2. Stanford heart transplant, induced centre ---------------------------
pat <- read.csv(file.path(out, "design_jasa_patients.csv"))
pat$centre <- pat$id %% 12 + 1
s <- read.csv(file.path(out, "design_jasa_split.csv"))
s$centre <- s$id %% 12 + 1
f_tv <- coxph(Surv(tstart, tstop, death) ~ trt, data = s, cluster = centre)
L <- 30
lm <- subset(pat, futime > L)
lm$trt <- as.integer(!is.na(lm$txtime) & lm$txtime <= L)
lm$t <- lm$futime - L
f_lm <- coxph(Surv(t, fustat) ~ trt, data = lm, cluster = centre)
k_lm <- survfit(Surv(t, fustat) ~ trt, data = lm, cluster = centre, influence = TRUE)
times <- c(100, 365); tau <- 730
res$jasa <- list(time_varying = cox_block(f_tv), landmark = c(cox_block(f_lm), km_block(k_lm)))

# ---- 3. sequential trials (rows from our design) ----------------------------
tr <- read.csv(file.path(out, "inference_jasa_trials.csv"))
w3 <- NULL
f_tr <- withCallingHandlers(
  coxph(Surv(stop, event) ~ trt + strata(trial), data = tr, cluster = id),
  warning = function(w) { w3 <<- conditionMessage(w); invokeRestart("muffleWarning") })
f_trc <- suppressWarnings(coxph(Surv(stop, event) ~ trt + strata(trial), data = tr, cluster = centre))
res$trials <- list(patient = c(cox_block(f_tr), list(warning = if (is.null(w3)) "" else w3)),
                   centre = cox_block(f_trc))

# ---- 4. constructed near-null fit --------------------------------------------
nn <- read.csv(file.path(out, "inference_near_null.csv"))
w4 <- NULL
f_nn <- withCallingHandlers(coxph(Surv(time, event) ~ x, data = nn, weights = w),
  warning = function(w) { w4 <<- conditionMessage(w); invokeRestart("muffleWarning") })
res$near_null <- c(cox_block(f_nn), list(iter = f_nn$iter, warning = if (is.null(w4)) "" else w4))

write_json(res, file.path(out, "inference_cluster.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
