# Reference values for clone-censor-weight (tests/design/test_reference_clone_censor.py).
# Written independently of the Python code, from the construction in Hernan (BMJ 2018;360:k182)
# and Maringe et al. (Int J Epidemiol 2020;49:1719-29), with eligibility ending at progression:
#
#   data: fixtures/design_clone_censor_patients.csv, the twin with n = 400, seed 1,
#         unmeasured_confounding 0 (causal_hcc.twin.simulate_twin; the test checks it is that cohort);
#         confounders portal_vein_invasion, first_line_effective, lung_met, oligometastases, age;
#         eligibility for surgery ends at the first pfs event (progression or death).
#   grace G = 6 months.
#   never-treat clone: censored at surgery; weight exp(H_A(min(t, progression) | x)), H_A from
#         coxph(Surv(exit, surgery) ~ x) on the time at risk of surgery (alive, unoperated,
#         progression-free), Breslow/Efron baseline at x = 0 (basehaz(centered = FALSE));
#         rows split at 40 quantiles of the surgery times (as causal_hcc does).
#   treat-within-G clone: censored at G if alive, unoperated and progression-free at G; weight 1
#         up to G; after G, 1 / P(operated by G | x) for the operated clones progression-free at
#         G, P from glm(binomial) fitted on the clones alive, under follow-up and progression-free
#         at G (those that could be censored there); weight 1 for clones that progressed by G.
#   effect: coxph(Surv(start, stop, event) ~ arm, weights = w, cluster = patient) (Efron, robust SE),
#         weighted Kaplan-Meier per arm.
#   (the unstabilised weights: numerator: none; the stabilised default is at the end of the script)
#   censoring_model: logistic -- the never-treat weights from a pooled logistic glm on person-intervals
#         of width g = 90th percentile of the surgery times / 12, time as linear + quadratic terms of
#         the interval midpoint scaled to the last interval's end, H = -sum log(1 - p_k) over completed
#         intervals, rows split at every interval end (summaries only, not the rows).
# Run: Rscript tests/reference/design_clone_censor.R   (from the repo root)
library(survival)
library(jsonlite)
out <- "tests/reference/fixtures"
G <- 6
conf <- c("portal_vein_invasion", "first_line_effective", "lung_met", "oligometastases", "age")
d <- read.csv(file.path(out, "design_clone_censor_patients.csv"))
n <- nrow(d)
T <- d$os_months
E <- d$os_event
tt <- ifelse(d$surgery == 1, d$months_to_surgery, NA)
state <- ifelse(d$pfs_event == 1, d$pfs_months, Inf)
X <- as.matrix(d[, conf])
stopifnot(all(T > 0))

# ---- hazard of surgery among those at risk of it -------------------------------------------
eps <- 1e-6 * max(T)
t_trt <- ifelse(!is.na(tt), pmax(tt, eps), Inf)
exit_a <- pmin(T, t_trt, state)
ev_a <- as.integer(!is.na(tt) & tt < T & t_trt <= state)
# positivity: every binary level has somebody operated (no patient excluded in this cohort)
for (v in conf[1:4]) stopifnot(length(unique(X[ev_a == 1, v])) == 2)
fa <- coxph(Surv(exit_a, ev_a) ~ X, ties = "efron")
bh <- basehaz(fa, centered = FALSE)
H <- function(t, x) {
  k <- findInterval(t, bh$time)
  h0 <- ifelse(k > 0, bh$hazard[pmax(k, 1)], 0)
  h0 * exp(drop(x %*% coef(fa)))
}
ev_times <- sort(unique(exit_a[ev_a == 1]))
cuts <- if (length(ev_times) > 40) unique(quantile(ev_times, seq(0, 1, length.out = 40), names = FALSE)) else ev_times

# split (a, b] at the cuts strictly inside it
split_rows <- function(a, b, cuts) {
  inner <- cuts[cuts > a & cuts < b]
  edges <- c(a, inner, b)
  cbind(head(edges, -1), edges[-1])
}

treated_fu <- !is.na(tt) & tt < T
stop0 <- ifelse(treated_fu, pmin(T, t_trt), T)
ev0 <- ifelse(treated_fu, 0L, E)
never_rows <- function(Hfun, cuts) {
  rows <- list()
  for (i in seq_len(n)) {
    f <- min(max(state[i], 0), stop0[i])               # weights frozen once no longer eligible
    p <- split_rows(0, f, cuts)
    if (stop0[i] > f) p <- rbind(p, c(f, stop0[i]))
    p <- p[p[, 2] > p[, 1], , drop = FALSE]
    w <- exp(Hfun(pmin(p[, 1], state[i]), X[rep(i, nrow(p)), , drop = FALSE]))
    e <- c(rep(0L, nrow(p) - 1), ev0[i])
    rows[[i]] <- data.frame(patient = d$id[i], arm = 0L, start = p[, 1], stop = p[, 2], event = e, w = w)
  }
  do.call(rbind, rows)
}
# ---- never treat ------------------------------------------------------------------------
rows <- list(never_rows(H, cuts))
# ---- treat within G ---------------------------------------------------------------------
in_grace <- treated_fu & tt <= G
lost_elig <- !in_grace & state <= G & state < T
deviates <- !in_grace & T > G & !lost_elig
stop1 <- ifelse(deviates, G, T)
ev1 <- ifelse(deviates, 0L, E)
elig_G <- T > G & state > G                            # could be censored at G
fg <- glm(in_grace ~ X, family = binomial, subset = elig_G)
pG <- rep(1, n)
pG[elig_G] <- fitted(fg)
for (i in seq_len(n)) {
  p <- split_rows(0, stop1[i], G)
  w <- ifelse(p[, 1] >= G & in_grace[i] & elig_G[i], 1 / pG[i], 1)
  e <- c(rep(0L, nrow(p) - 1), ev1[i])
  rows[[length(rows) + 1]] <- data.frame(patient = d$id[i], arm = 1L, start = p[, 1], stop = p[, 2],
                                         event = e, w = w)
}
treat <- do.call(rbind, rows[-1])
cl <- rbind(rows[[1]], treat)
cl <- cl[cl$stop > cl$start, ]
cl <- cl[order(cl$arm, cl$patient, cl$start), ]
write.csv(cl, file.path(out, "design_clone_censor_rows.csv"), row.names = FALSE)

fit <- coxph(Surv(start, stop, event) ~ arm, data = cl, weights = w, cluster = patient, ties = "efron")
km <- survfit(Surv(start, stop, event) ~ arm, data = cl, weights = w)
kms <- summary(km, times = c(12, 24))

# ---- censoring_model: logistic (pooled logistic on person-intervals) ------------------------
te <- exit_a[ev_a == 1]
g <- quantile(te, 0.9, names = FALSE) / 12
K <- ceiling(max(exit_a) / g)
pi_rows <- do.call(rbind, lapply(0:(K - 1), function(k) {
  i <- which(exit_a > k * g)
  data.frame(i = i, k = k, y = as.integer(ev_a[i] == 1 & exit_a[i] <= (k + 1) * g))
}))
pi_rows$mid <- (pi_rows$k + 0.5) * g / (K * g)
Xp <- X[pi_rows$i, , drop = FALSE]
fl <- glm(pi_rows$y ~ Xp + pi_rows$mid + I(pi_rows$mid^2), family = binomial,
          control = glm.control(epsilon = 1e-12, maxit = 100))
Hlog <- function(t, x) {
  kdone <- pmin(pmax(floor(t / g + 1e-12), 0), K)
  out <- numeric(length(t))
  for (k in seq_len(max(c(kdone, 0))) - 1) {
    m <- kdone > k
    eta <- coef(fl)[1] + drop(x[m, , drop = FALSE] %*% coef(fl)[2:(ncol(X) + 1)]) +
      coef(fl)[ncol(X) + 2] * (k + 0.5) / K + coef(fl)[ncol(X) + 3] * ((k + 0.5) / K)^2
    out[m] <- out[m] - log1p(-pmin(plogis(eta), 1 - 1e-12))
  }
  out
}
nl <- never_rows(Hlog, (1:K) * g)
cll <- rbind(nl, treat)
cll <- cll[cll$stop > cll$start, ]
fitl <- coxph(Surv(start, stop, event) ~ arm, data = cll, weights = w, cluster = patient, ties = "efron")
last_never <- nl[cumsum(table(factor(nl$patient, levels = unique(nl$patient)))), ]

# ---- stabilised weights (the default; numerator "time" for adjustment none, "baseline" for multivariable) ------
# numerator: the hazard of surgery among the clones alive, under follow-up and unoperated, NOT stopped at progression
# (the numerator may depend only on what the outcome model conditions on); a surgery after progression censors
# its clone there without an event. Never-treat clones: exp(H(min(t, progression) | x) - Hn(t)), rows split at the
# same cuts over their whole follow-up. Treat clones alive at G: after G, their unstabilised weight times
# P(not censored at G | .) among the clones alive at G (proportion, or glm on x).
exit_n <- pmin(T, t_trt)
stab <- function(kind) {
  if (kind == "time") {
    na_t <- sort(unique(exit_n[ev_a == 1]))
    na_h <- cumsum(sapply(na_t, function(u) sum(exit_n == u & ev_a == 1) / sum(exit_n >= u)))
    Hn <- function(t, x) { k <- findInterval(t, na_t); ifelse(k > 0, na_h[pmax(k, 1)], 0) }
  } else {
    fn <- coxph(Surv(exit_n, ev_a) ~ X, ties = "efron")
    bn <- basehaz(fn, centered = FALSE)
    Hn <- function(t, x) {
      k <- findInterval(t, bn$time)
      ifelse(k > 0, bn$hazard[pmax(k, 1)], 0) * exp(drop(x %*% coef(fn)))
    }
  }
  rows <- list()
  for (i in seq_len(n)) {
    p <- split_rows(0, stop0[i], cuts)
    xi <- X[rep(i, nrow(p)), , drop = FALSE]
    w <- exp(H(pmin(p[, 1], state[i]), xi) - Hn(p[, 1], xi))
    rows[[i]] <- data.frame(patient = d$id[i], arm = 0L, start = p[, 1], stop = p[, 2],
                            event = c(rep(0L, nrow(p) - 1), ev0[i]), w = w)
  }
  alive_G <- T > G
  unc <- as.integer(!deviates)
  pN <- rep(1, n)
  if (kind == "time") pN[alive_G] <- mean(unc[alive_G]) else
    pN[alive_G] <- fitted(glm(unc ~ X, family = binomial, subset = alive_G))
  for (i in seq_len(n)) {
    p <- split_rows(0, stop1[i], G)
    w <- ifelse(p[, 1] >= G & in_grace[i] & elig_G[i], 1 / pG[i], 1)
    w <- ifelse(p[, 1] >= G & alive_G[i], w * pN[i], w)
    rows[[length(rows) + 1]] <- data.frame(patient = d$id[i], arm = 1L, start = p[, 1], stop = p[, 2],
                                           event = c(rep(0L, nrow(p) - 1), ev1[i]), w = w)
  }
  x <- do.call(rbind, rows)
  x <- x[x$stop > x$start, ]
  x <- x[order(x$arm, x$patient, x$start), ]
  xx <- X[match(x$patient, d$id), , drop = FALSE]
  f <- if (kind == "time") coxph(Surv(start, stop, event) ~ arm, data = x, weights = w, cluster = patient) else
    coxph(Surv(start, stop, event) ~ arm + xx, data = x, weights = w, cluster = patient)
  k <- summary(survfit(Surv(start, stop, event) ~ arm, data = x, weights = w), times = c(12, 24))
  list(n_rows = nrow(x), w_sum = sum(x$w), w_max = max(x$w), w_mean = mean(x$w),
       coef = unname(coef(f)), robust_se = unname(sqrt(diag(f$var))),
       km = list(strata = as.character(k$strata), time = k$time, surv = k$surv))
}
stabilised <- list(time = stab("time"), baseline = stab("baseline"))

res <- list(
  grace = G, n = n, n_rows = nrow(cl), stabilised = stabilised,
  treatment_model = list(coef = unname(coef(fa)), events = sum(ev_a)),
  grace_model = list(n = sum(elig_G), operated = sum(in_grace[elig_G]), coef = unname(coef(fg))),
  operated_progressed_by_G = sum(in_grace & T > G & state <= G),
  hr = list(coef = unname(coef(fit)), robust_se = unname(sqrt(diag(fit$var)))),
  km = list(strata = as.character(kms$strata), time = kms$time, surv = kms$surv),
  logistic = list(grid = g, intervals = K, coef = unname(coef(fl)), n_rows = nrow(cll),
                  never_last_patient = last_never$patient, never_last_weight = last_never$w,
                  hr_coef = unname(coef(fitl)), hr_robust_se = unname(sqrt(diag(fitl$var)))),
  R = R.version.string, survival = as.character(packageVersion("survival")))
write_json(res, file.path(out, "design_clone_censor.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
