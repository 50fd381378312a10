# Reference values for the censoring weights with time-varying confounders
# (tests/design/test_reference_time_varying_weights.py), built here independently of the Python code on data
# this script generates (the Havercroft & Didelez 2012 algorithm of adjust_msm.R with a lower initiation rate,
# theta0 = -2, so that the never-treat clones keep some weight; no loss to follow-up).
#
# (1) clone-censor, grace G = 10, censoring_model logistic, censoring_grid h = 5:
#   treatment-start model: pooled logistic on decisions k = 0, 1, ... at k h (a start in [k h, (k+1) h) is
#     decision k; treatment at time 0 is placed at eps = 1e-6 max(T)); at risk while untreated before k h and
#     under follow-up; glm(start ~ v + L(k h) + mid + I(mid^2)), mid = (k + 0.5) h / (K h), K = number of
#     decisions in the records;
#   never-treat clone: censored at treatment start; rows split at the decision times, weight at a piece's start
#     a = exp(H(a)), H(a) = -sum over decisions k h <= a of log(1 - p_k);
#   treat-within-G clone: censored at G if alive and untreated at G; after G the clones that started in the
#     last decision interval (G - h, G] weigh 1 / P(start in (G - h, G] | v, L(G)), glm fitted on the clones
#     alive at G that had not started by G - h; earlier starters weigh 1 (grace_weights: last_interval);
#   effect: coxph(Surv(start, stop, event) ~ arm, weights, cluster = id) (robust SE).
# (1c) the same clone-censor with grace_weights: state (the default): after G every clone that started within
#   grace and is alive at G weighs 1 / P(started by G | v, L(G)), glm fitted on the clones alive at G;
#   unstabilised and stabilised (time) as in (1) and (1b).
# (2) sequential trials, grid 5, window 20, analysis per_protocol, censoring_model cox:
#   treatment-start model: coxph(Surv(start, stop, started) ~ v + L) on the at-risk time split where L changes,
#     a measurement at m taking effect at m - delta (delta = eps / 2) so that a start at m sees it;
#     H(t) = sum over the pieces of (0, t] of exp(b v + g L) [H0(stop) - H0(start)], H0 = basehaz(centered = FALSE);
#   trials at s = 0, 5, ..., 20: eligible = alive and untreated before s; arm = started in [s, s + 5);
#     controls censored at their treatment start (at least eps after s), rows split at the model's event times,
#     weight exp(H(s + a) - H(s)); treated weigh 1;
#   effect: coxph(Surv(start, stop, event) ~ arm + strata(trial), weights, cluster = id) and the same with
#     v + L(s) (multivariable: each trial adjusts for L at its start).
# (1b) the same clone-censor, stabilised weights (the default): never-treat clones weigh
#   exp(H(a) - Hn(a)), Hn from the same pooled logistic model without L: glm(start ~ mid + I(mid^2)) (numerator
#   "time", adjustment none) or glm(start ~ v + mid + I(mid^2)) ("baseline", adjustment multivariable); treat
#   clones alive at G weigh, after G, P(not censored at G | .) times their unstabilised weight, P the proportion
#   (time) or glm(uncensored ~ v) (baseline) among the clones alive at G;
#   effect: coxph(... ~ arm) (time) and coxph(... ~ arm + v) (baseline).
# (2b) the same sequential trials, stabilised: deviations are the starts after the trial start (a start at time 0,
#   placed at eps, is the assignment of trial 0, as a start at s is of trial s): controls weigh
#   exp(H(max(s + a, eps)) - H(max(s, eps)) - Hn_trial(a)), Hn fitted on the trials' patients (those starting at the
#   trial start left out), time from the trial start: the Nelson-Aalen hazard of each trial (time) or
#   coxph(Surv(a, started) ~ v + L(s) + strata(trial)) (baseline, basehaz(centered = FALSE)); rows split at the
#   denominator's cuts and the numerator's event times of the trial (at most 40, at quantiles).
# (3) TrialEmulation-style: sequential trials per protocol (grid 5, window 20) with the pooled logistic
#   denominator of (1) (glm on the person-intervals, decisions at k h) and a glm numerator on the trials'
#   decision records after each trial start (s < k h <= exit): glm(start ~ f + I(f^2) + s + I(s^2)) (time) or
#   glm(start ~ v + L(s) + f + I(f^2) + s + I(s^2)) (baseline), f = k h - s; controls weigh
#   exp(H(s + a) - H(s) - Hn(a)), H and Hn summed over the decisions in (s, s + a]; unstabilised as well.
#   effect: coxph(... ~ arm + strata(trial)) and coxph(... ~ arm + v + Ls + strata(trial)).
# Run: Rscript tests/reference/design_time_varying_weights.R   (from the repo root)
suppressMessages({library(survival); library(jsonlite)})
out <- "tests/reference/fixtures"
ctrl <- glm.control(epsilon = 1e-14, maxit = 100)

simulate <- function(n, K = 5, blocks = 8, theta0 = -2) {
  U <- runif(n); thr <- -log1p(-U); v <- rnorm(n)
  L <- pmax(qgamma(U, shape = 3, scale = 154) + rnorm(n, 0, 20), 0)
  time <- rep(K * blocks, n); event <- integer(n); tstar <- rep(Inf, n)
  done <- rep(FALSE, n); lam <- numeric(n); ap <- ap2 <- rep(FALSE, n); Ut <- U
  vis <- list()
  for (b in 0:(blocks - 1)) {
    t0 <- b * K
    if (b > 0) {
      for (j in 1:K) Ut <- pmin(pmax(Ut + rnorm(n, 0, 0.05), 0), 1)
      L <- pmax(L + 150 * (ap & !ap2) + rnorm(n, 100 * (Ut - 2), 50), 0)
    }
    alive <- !done
    vis[[b + 1]] <- data.frame(id = which(alive), time = t0, L = L[alive])
    p <- plogis(theta0 + 0.0205 * t0 - 0.00405 * (L - 500) + 0.3 * v)
    start <- alive & is.infinite(tstar) & runif(n) < p
    tstar[start] <- t0
    A <- is.finite(tstar) & tstar <= t0
    rate <- exp(-3 - 0.5 * A)
    need <- (thr - lam) / rate
    dies <- alive & need <= K
    time[dies] <- t0 + need[dies]; event[dies] <- 1L
    done <- done | dies
    lam <- lam + rate * K
    ap2 <- ap; ap <- A
  }
  treated <- is.finite(tstar) & tstar < time
  pts <- data.frame(id = 1:n, time = time, event = event, treated = as.integer(treated),
                    treatment_time = ifelse(treated, tstar, NA), v = v)
  vis <- do.call(rbind, vis)
  vis <- vis[order(vis$id, vis$time), ]
  vis <- vis[vis$time < pts$time[vis$id], ]
  list(pts = pts, vis = vis)
}

set.seed(2027)
d <- simulate(300)
write.csv(d$pts, file.path(out, "design_tv_weights_patients.csv"), row.names = FALSE, na = "")
write.csv(d$vis, file.path(out, "design_tv_weights_visits.csv"), row.names = FALSE)
pts <- d$pts; vis <- d$vis; n <- nrow(pts)
T <- pts$time; E <- pts$event; v <- pts$v
tt <- ifelse(pts$treated == 1, pts$treatment_time, NA)
treated_fu <- !is.na(tt) & tt < T
eps <- 1e-6 * max(T)
t_trt <- ifelse(treated_fu, pmax(tt, eps), Inf)
Lat <- function(i, t) { x <- vis[vis$id == i & vis$time <= t, ]; if (nrow(x)) x$L[nrow(x)] else vis$L[vis$id == i][1] }
mtimes <- function(i) vis$time[vis$id == i]

# split (a, b] at the cuts strictly inside
split_rows <- function(a, b, cuts) {
  inner <- sort(unique(cuts[cuts > a & cuts < b]))
  e <- c(a, inner, b)
  cbind(head(e, -1), e[-1])
}

# ---------------------------------------------------------------- (1) clone-censor, logistic, grid 5, G = 10
h <- 5; G <- 10
exit_a <- pmin(T, t_trt)
ev_a <- as.integer(treated_fu)
rec <- do.call(rbind, lapply(1:n, function(i) {
  if (ev_a[i] == 1) k <- 0:floor(t_trt[i] / h + 1e-9) else k <- 0:(ceiling(exit_a[i] / h - 1e-9) - 1)
  k <- k[k >= 0]
  data.frame(id = i, k = k, y = as.integer(ev_a[i] == 1 & k == floor(t_trt[i] / h + 1e-9)))
}))
Kn <- max(rec$k) + 1
rec$mid <- (rec$k + 0.5) * h / (Kn * h)
rec$v <- v[rec$id]
rec$L <- mapply(Lat, rec$id, rec$k * h)
tm <- glm(y ~ v + L + mid + I(mid^2), family = binomial, data = rec, control = ctrl)
Hlog <- function(i, t) {
  k <- 0:floor(t / h + 1e-9)
  nd <- data.frame(v = v[i], L = sapply(k * h, function(s) Lat(i, s)), mid = (k + 0.5) * h / (Kn * h))
  -sum(log1p(-predict(tm, nd, type = "response")))
}
cuts <- (1:Kn) * h
rows <- list()
for (i in 1:n) {
  # never treat
  stop0 <- min(T[i], t_trt[i]); ev0 <- if (treated_fu[i]) 0 else E[i]
  s <- split_rows(0, stop0, cuts)
  w <- sapply(s[, 1], function(a) exp(Hlog(i, a)))
  rows[[length(rows) + 1]] <- data.frame(id = i, arm = 0, start = s[, 1], stop = s[, 2],
                                         event = c(rep(0, nrow(s) - 1), ev0), w = w)
}
in_grace <- treated_fu & tt <= G
deviates <- !in_grace & T > G
stop1 <- ifelse(deviates, G, T); ev1 <- ifelse(deviates, 0, E)
elig_G <- T > G
early <- in_grace & tt <= G - h
risk <- elig_G & !early
gd <- data.frame(y = as.integer(in_grace[risk]), v = v[risk], L = sapply(which(risk), function(i) Lat(i, G)))
gm <- glm(y ~ v + L, family = binomial, data = gd, control = ctrl)
pG <- rep(1, n); pG[risk] <- fitted(gm)
for (i in 1:n) {
  s <- split_rows(0, stop1[i], G)
  w <- ifelse(s[, 1] >= G & in_grace[i] & elig_G[i], 1 / pG[i], 1)
  rows[[length(rows) + 1]] <- data.frame(id = i, arm = 1, start = s[, 1], stop = s[, 2],
                                         event = c(rep(0, nrow(s) - 1), ev1[i]), w = w)
}
cc <- do.call(rbind, rows)
cc <- cc[cc$stop > cc$start, ]
fcc <- coxph(Surv(start, stop, event) ~ arm, data = cc, weights = w, cluster = id,
             control = coxph.control(eps = 1e-11))
res_cc <- list(coef = unname(coef(fcc)), se = unname(sqrt(diag(fcc$var))), treat_model = unname(coef(tm)),
               grace_model = unname(coef(gm)), n_rows = nrow(cc), w_max = max(cc$w), w_sum = sum(cc$w))

# ---------------------------------------------------------------- (1b) clone-censor, stabilised
Hnum_log <- function(fit, i, t) {
  k <- 0:floor(t / h + 1e-9)
  nd <- data.frame(v = v[i], mid = (k + 0.5) * h / (Kn * h))
  -sum(log1p(-predict(fit, nd, type = "response")))
}
alive_G <- T > G
cc_stab <- function(kind, pGv = pG) {
  num <- if (kind == "time") glm(y ~ mid + I(mid^2), family = binomial, data = rec, control = ctrl) else
    glm(y ~ v + mid + I(mid^2), family = binomial, data = rec, control = ctrl)
  gy <- as.integer(!deviates[alive_G])
  pN <- rep(1, n)
  gn <- NULL
  if (kind == "time") pN[alive_G] <- mean(gy) else {
    gn <- glm(gy ~ v[alive_G], family = binomial, control = ctrl)
    pN[alive_G] <- fitted(gn)
  }
  rows <- list()
  for (i in 1:n) {
    stop0 <- min(T[i], t_trt[i]); ev0 <- if (treated_fu[i]) 0 else E[i]
    s <- split_rows(0, stop0, cuts)
    w <- sapply(s[, 1], function(a) exp(Hlog(i, a) - Hnum_log(num, i, a)))
    rows[[length(rows) + 1]] <- data.frame(id = i, arm = 0, start = s[, 1], stop = s[, 2],
                                           event = c(rep(0, nrow(s) - 1), ev0), w = w, v = v[i])
  }
  for (i in 1:n) {
    s <- split_rows(0, stop1[i], G)
    w <- ifelse(s[, 1] >= G & in_grace[i] & elig_G[i], 1 / pGv[i], 1)
    w <- ifelse(s[, 1] >= G & alive_G[i], w * pN[i], w)
    rows[[length(rows) + 1]] <- data.frame(id = i, arm = 1, start = s[, 1], stop = s[, 2],
                                           event = c(rep(0, nrow(s) - 1), ev1[i]), w = w, v = v[i])
  }
  x <- do.call(rbind, rows)
  x <- x[x$stop > x$start, ]
  f <- if (kind == "time") coxph(Surv(start, stop, event) ~ arm, data = x, weights = w, cluster = id,
                                 control = coxph.control(eps = 1e-11)) else
    coxph(Surv(start, stop, event) ~ arm + v, data = x, weights = w, cluster = id, control = coxph.control(eps = 1e-11))
  list(coef = unname(coef(f)), se = unname(sqrt(diag(f$var))), numerator_model = unname(coef(num)),
       grace_numerator = if (is.null(gn)) mean(gy) else unname(coef(gn)), n_rows = nrow(x),
       w_max = max(x$w), w_sum = sum(x$w), w_mean = mean(x$w))
}
res_cc$stabilised_time <- cc_stab("time")
res_cc$stabilised_baseline <- cc_stab("baseline")

# ---------------------------------------------------------------- (1c) clone-censor, grace_weights: state
gs <- data.frame(y = as.integer(in_grace[elig_G]), v = v[elig_G], L = sapply(which(elig_G), function(i) Lat(i, G)))
gms <- glm(y ~ v + L, family = binomial, data = gs, control = ctrl)
pGs <- rep(1, n); pGs[elig_G] <- fitted(gms)
rows <- list()
for (i in 1:n) {
  stop0 <- min(T[i], t_trt[i]); ev0 <- if (treated_fu[i]) 0 else E[i]
  s <- split_rows(0, stop0, cuts)
  w <- sapply(s[, 1], function(a) exp(Hlog(i, a)))
  rows[[length(rows) + 1]] <- data.frame(id = i, arm = 0, start = s[, 1], stop = s[, 2],
                                         event = c(rep(0, nrow(s) - 1), ev0), w = w)
}
for (i in 1:n) {
  s <- split_rows(0, stop1[i], G)
  w <- ifelse(s[, 1] >= G & in_grace[i] & elig_G[i], 1 / pGs[i], 1)
  rows[[length(rows) + 1]] <- data.frame(id = i, arm = 1, start = s[, 1], stop = s[, 2],
                                         event = c(rep(0, nrow(s) - 1), ev1[i]), w = w)
}
ccs <- do.call(rbind, rows)
ccs <- ccs[ccs$stop > ccs$start, ]
fccs <- coxph(Surv(start, stop, event) ~ arm, data = ccs, weights = w, cluster = id,
              control = coxph.control(eps = 1e-11))
res_cc$state <- list(coef = unname(coef(fccs)), se = unname(sqrt(diag(fccs$var))), grace_model = unname(coef(gms)),
                     n_rows = nrow(ccs), w_max = max(ccs$w), w_sum = sum(ccs$w),
                     stabilised_time = cc_stab("time", pGs))

# ---------------------------------------------------------------- (2) sequential trials per protocol, cox
delta <- eps * 0.5
ap <- list()
for (i in 1:n) {
  if (exit_a[i] <= 0) next
  m <- mtimes(i) - delta
  s <- split_rows(0, exit_a[i], m)
  Ls <- sapply(s[, 1], function(a) Lat(i, a + delta))
  ap[[length(ap) + 1]] <- data.frame(id = i, start = s[, 1], stop = s[, 2], v = v[i], L = Ls,
                                     y = c(rep(0, nrow(s) - 1), ev_a[i]))
}
ap <- do.call(rbind, ap)
cm <- coxph(Surv(start, stop, y) ~ v + L, data = ap, ties = "efron", control = coxph.control(eps = 1e-11))
bh <- basehaz(cm, centered = FALSE)
H0 <- function(t) { k <- findInterval(t, bh$time); ifelse(k > 0, bh$hazard[pmax(k, 1)], 0) }
Hcox <- function(i, t) {
  if (t <= 0) return(0)
  s <- split_rows(0, t, mtimes(i) - delta)
  Ls <- sapply(s[, 1], function(a) Lat(i, a + delta))
  sum(exp(coef(cm)[1] * v[i] + coef(cm)[2] * Ls) * (H0(s[, 2]) - H0(s[, 1])))
}
evt <- sort(unique(exit_a[ev_a == 1]))
mcuts <- if (length(evt) > 40) unique(quantile(evt, seq(0, 1, length.out = 40), names = FALSE)) else evt
grid <- 5; starts <- seq(0, 20, by = grid)
trials <- list()
for (k in seq_along(starts)) {
  s0 <- starts[k]
  elig <- which(T > s0 & !(treated_fu & tt < s0))
  arm <- as.integer(treated_fu[elig] & tt[elig] < s0 + grid)
  if (sum(arm) == 0 || sum(arm) == length(elig)) next
  trials[[length(trials) + 1]] <- list(k = k - 1, s0 = s0, elig = elig, arm = arm)
}
# numerator rows: every patient of a trial but those starting at its start (their assignment)
num_rows <- do.call(rbind, lapply(trials, function(tr) {
  i <- tr$elig[!(treated_fu[tr$elig] & tt[tr$elig] <= tr$s0)]
  data.frame(trial = tr$k, s0 = tr$s0, id = i, ex = ifelse(treated_fu[i], tt[i], T[i]) - tr$s0,
             ev = as.integer(treated_fu[i]), v = v[i], Ls = sapply(i, function(j) Lat(j, tr$s0)))
}))
quant_cuts <- function(x) if (length(x) > 40) unique(quantile(x, seq(0, 1, length.out = 40), names = FALSE)) else x
seq_trials <- function(kind) {
  # kind: "none" (unstabilised), "time" or "baseline"
  Hn <- function(k, i, a) 0
  ncuts <- function(k) numeric(0)
  if (kind == "time") {
    Hn <- function(k, i, a) {
      r <- num_rows[num_rows$trial == k, ]
      u <- sort(unique(r$ex[r$ev == 1]))
      u <- u[u <= a]
      sum(vapply(u, function(x) sum(r$ex == x & r$ev == 1) / sum(r$ex >= x), numeric(1)))
    }
    ncuts <- function(k) { r <- num_rows[num_rows$trial == k, ]; quant_cuts(sort(unique(r$ex[r$ev == 1]))) }
  } else if (kind == "baseline") {
    cn <- coxph(Surv(ex, ev) ~ v + Ls + strata(trial), data = num_rows, ties = "efron",
                control = coxph.control(eps = 1e-11))
    bhn <- basehaz(cn, centered = FALSE)
    Hn <- function(k, i, a) {
      b <- bhn[bhn$strata == paste0("trial=", k), ]
      j <- findInterval(a, b$time)
      h0 <- if (j > 0) b$hazard[j] else 0
      h0 * exp(coef(cn)[1] * v[i] + coef(cn)[2] * Lat(i, starts[k + 1]))
    }
    ncuts <- function(k) { r <- num_rows[num_rows$trial == k, ]; quant_cuts(sort(unique(r$ex[r$ev == 1]))) }
  }
  st <- list()
  for (tr in trials) {
    s0 <- tr$s0
    for (j in seq_along(tr$elig)) {
      i <- tr$elig[j]
      stp <- T[i] - s0; ev <- E[i]
      if (tr$arm[j] == 0 && treated_fu[i]) { stp <- min(stp, max(tt[i] - s0, eps)); ev <- 0 }
      pieces <- if (tr$arm[j] == 1) matrix(c(0, stp), 1) else split_rows(0, stp, c(mcuts - s0, ncuts(tr$k)))
      Hs <- Hcox(i, max(s0, eps))
      w <- if (tr$arm[j] == 1) 1 else
        sapply(pieces[, 1], function(a) exp(Hcox(i, max(s0 + a, eps)) - Hs - Hn(tr$k, i, a)))
      st[[length(st) + 1]] <- data.frame(id = i, trial = tr$k, arm = tr$arm[j], start = pieces[, 1],
                                         stop = pieces[, 2], event = c(rep(0, nrow(pieces) - 1), ev), w = w,
                                         v = v[i], Ls = Lat(i, s0))
    }
  }
  st <- do.call(rbind, st)
  st[st$stop > st$start, ]
}
fits <- function(st, extra = list()) {
  f1 <- coxph(Surv(start, stop, event) ~ arm + strata(trial), data = st, weights = w, cluster = id,
              control = coxph.control(eps = 1e-11))
  f2 <- coxph(Surv(start, stop, event) ~ arm + v + Ls + strata(trial), data = st, weights = w, cluster = id,
              control = coxph.control(eps = 1e-11))
  c(list(coef = unname(coef(f1)), se = unname(sqrt(diag(f1$var))), coef_mv = unname(coef(f2)),
         se_mv = unname(sqrt(diag(f2$var))), n_rows = nrow(st), w_max = max(st$w), w_sum = sum(st$w)), extra)
}
res_st <- fits(seq_trials("none"), list(treat_model = unname(coef(cm))))
res_st$stabilised_time <- fits(seq_trials("time"))
res_st$stabilised_baseline <- fits(seq_trials("baseline"))

# ---------------------------------------------------------------- (3) TrialEmulation-style: glm numerator and denominator
# the decision records of the trials: decisions k h with s < k h, up to the start (event) or the last one before exit
te_rec <- do.call(rbind, lapply(seq_len(nrow(num_rows)), function(r) {
  x <- num_rows[r, ]
  ab <- x$s0 + x$ex
  klo <- floor(x$s0 / h + 1e-9) + 1
  khi <- if (x$ev == 1) floor(ab / h + 1e-9) else ceiling(ab / h - 1e-9) - 1
  if (khi < klo) return(NULL)
  kd <- klo:khi
  data.frame(row = r, trial = x$trial, s = x$s0, kd = kd, f = kd * h - x$s0, v = x$v, Ls = x$Ls,
             y = as.integer(x$ev == 1 & kd == floor(ab / h + 1e-9)))
}))
num_t <- glm(y ~ f + I(f^2) + s + I(s^2), family = binomial, data = te_rec, control = ctrl)
num_b <- glm(y ~ v + Ls + f + I(f^2) + s + I(s^2), family = binomial, data = te_rec, control = ctrl)
te_rec$q_t <- fitted(num_t); te_rec$q_b <- fitted(num_b)
te_trials <- function(kind) {
  st <- list()
  for (tr in trials) {
    s0 <- tr$s0
    for (j in seq_along(tr$elig)) {
      i <- tr$elig[j]
      stp <- T[i] - s0; ev <- E[i]
      if (tr$arm[j] == 0 && treated_fu[i]) { stp <- min(stp, max(tt[i] - s0, eps)); ev <- 0 }
      pieces <- if (tr$arm[j] == 1) matrix(c(0, stp), 1) else split_rows(0, stp, (1:(Kn + 10)) * h - s0)
      w <- 1
      if (tr$arm[j] == 0) {
        rr <- te_rec[te_rec$trial == tr$k & num_rows$id[te_rec$row] == i, ]
        w <- sapply(pieces[, 1], function(a) {
          hn <- 0
          if (kind != "none") {
            q <- if (kind == "time") rr$q_t else rr$q_b
            hn <- -sum(log1p(-q[rr$kd * h <= s0 + a + 1e-9]))
          }
          exp(Hlog(i, s0 + a) - Hlog(i, s0) - hn)
        })
      }
      st[[length(st) + 1]] <- data.frame(id = i, trial = tr$k, arm = tr$arm[j], start = pieces[, 1],
                                         stop = pieces[, 2], event = c(rep(0, nrow(pieces) - 1), ev), w = w,
                                         v = v[i], Ls = Lat(i, s0))
    }
  }
  st <- do.call(rbind, st)
  st[st$stop > st$start, ]
}
res_te <- list(unstabilised = fits(te_trials("none")),
               stabilised_time = fits(te_trials("time"), list(numerator_model = unname(coef(num_t)))),
               stabilised_baseline = fits(te_trials("baseline"), list(numerator_model = unname(coef(num_b)))),
               decision_records = nrow(te_rec))

write_json(list(clone_censor = res_cc, sequential_trials = res_st, trialemulation_style = res_te, R = R.version.string,
                survival = as.character(packageVersion("survival"))),
           file.path(out, "design_tv_weights.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("written", file.path(out, "design_tv_weights.json"), "\n")
