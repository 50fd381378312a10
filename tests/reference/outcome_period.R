# Reference values for the period outcome models (tests/outcome/test_reference_period.py):
#   * outcome_model: pooled_logistic -- glm(binomial, weights) with the same time terms, the
#     cluster-robust sandwich (sandwich::vcovCL(type = "HC0", cadjust = FALSE)), standardised survival
#     curves S_a(K) = sum_i w_i0 prod_{k<K} (1 - p_ik(a)) / sum_i w_i0 and their survival difference, risk
#     ratio and RMST difference, SEs by the delta method (numerical gradient) plus the sampling of the
#     standardisation population (sum over clusters of the squared summed influences);
#   * ties = "breslow" (and efron) of a weighted counting-process coxph with robust SE;
#   * risk_ratio of Kaplan-Meier curves: Greenwood (unweighted) and IJ (weighted, clustered on id)
#     SE of log((1 - S1) / (1 - S0)) by the delta method from survfit's standard errors.
# Data are generated here (seeded) and written to fixtures/outcome_period_*.csv.
# Run: Rscript tests/reference/outcome_period.R   (from the repo root)
suppressMessages({library(survival); library(sandwich); library(jsonlite); library(rms)})
out <- "tests/reference/fixtures"
set.seed(20261207)

# ---- data: units followed in discrete periods -------------------------------------------------
gen_units <- function(n, trial = rep(0, n), patient = seq_len(n)) {
  x <- rnorm(n)
  a <- rbinom(n, 1, plogis(0.4 * x))
  rows <- list()
  for (i in seq_len(n)) {
    k <- 0; w <- exp(rnorm(1, 0, 0.2))
    repeat {
      h <- plogis(-2.6 + 0.08 * k - 0.004 * k^2 - 0.5 * a[i] + 0.6 * x[i] + 0.1 * trial[i])
      y <- rbinom(1, 1, h)
      rows[[length(rows) + 1]] <- c(unit = i, patient = patient[i], trial = trial[i], k = k, a = a[i],
                                    x = x[i], y = y, w = w)
      if (y == 1 || runif(1) < 0.04 || k == 13) break
      k <- k + 1
      w <- w * exp(rnorm(1, 0, 0.1))
    }
  }
  as.data.frame(do.call(rbind, rows))
}
A <- gen_units(300)
B <- gen_units(450, trial = rep(0:2, 150), patient = rep(1:150, each = 3))
write.csv(A, file.path(out, "outcome_period_A.csv"), row.names = FALSE)
write.csv(B, file.path(out, "outcome_period_B.csv"), row.names = FALSE)

ctrl <- glm.control(epsilon = 1e-14, maxit = 100)

# standardised functionals of a fitted pooled logistic model
std_fun <- function(beta, mm_fun, units, Kmax) {
  # returns list(S1, S0) of length Kmax + 1 (K = 0..Kmax) and per-unit survival matrices
  res <- list()
  for (arm in 0:1) {
    Si <- matrix(1, nrow(units), Kmax + 1)
    s <- rep(1, nrow(units))
    for (k in 0:(Kmax - 1)) {
      X <- mm_fun(units, k, arm)
      h <- plogis(drop(X %*% beta))
      s <- s * (1 - h)
      Si[, k + 2] <- s
    }
    res[[paste0("S", arm)]] <- Si
  }
  res
}

case <- function(d, formula, mm_fun, times, taus, name, cluster = d$patient) {
  fit <- suppressWarnings(glm(formula, data = d, weights = w, family = binomial, control = ctrl))
  V <- vcovCL(fit, cluster = cluster, type = "HC0", cadjust = FALSE)
  beta <- coef(fit)
  Kmax <- max(d$k) + 1
  units <- d[d$k == 0, ]                     # every unit has a record at k = 0
  om <- units$w
  ucl <- units$patient
  funcs <- function(b) {
    st <- std_fun(b, mm_fun, units, Kmax)
    S1 <- colSums(om * st$S1) / sum(om); S0 <- colSums(om * st$S0) / sum(om)
    list(S1 = S1, S0 = S0, st = st)
  }
  base <- funcs(beta)
  # scalar functionals: survival difference, log risk ratio at times; RMST difference at taus
  lens <- function(tau) { l <- pmin(pmax(tau - (0:Kmax), 0), 1); if (tau > Kmax + 1) l[Kmax + 1] <- tau - Kmax; l }
  theta <- function(f) {
    c(sapply(times, function(t) f$S1[t + 1] - f$S0[t + 1]),
      sapply(times, function(t) log(1 - f$S1[t + 1]) - log(1 - f$S0[t + 1])),
      sapply(taus, function(tau) sum(lens(tau) * (f$S1 - f$S0))),
      f$S1[-1], f$S0[-1])
  }
  th0 <- theta(base)
  # per-unit theta_i (the same functionals of one unit's curves) for the population term
  theta_unit <- function(st, i) {
    S1 <- st$S1[i, ]; S0 <- st$S0[i, ]
    c(S1[times + 1] - S0[times + 1],
      # d log(1 - S_a) / d S_a: the population influence of the ratio is -(S1_i - S1)/(1-S1) + (S0_i - S0)/(1-S0)
      -(S1[times + 1] - base$S1[times + 1]) / (1 - base$S1[times + 1]) +
        (S0[times + 1] - base$S0[times + 1]) / (1 - base$S0[times + 1]),
      sapply(taus, function(tau) sum(lens(tau) * (S1 - S0))),
      S1[-1], S0[-1])
  }
  nrat <- length(times)
  # numerical gradient
  J <- matrix(0, length(th0), length(beta))
  for (j in seq_along(beta)) {
    h <- 1e-5 * max(1, abs(beta[j]))
    bp <- beta; bm <- beta; bp[j] <- bp[j] + h; bm[j] <- bm[j] - h
    J[, j] <- (theta(funcs(bp)) - theta(funcs(bm))) / (2 * h)
  }
  # coefficient influence per cluster: U_g bread, so that V = sum_g IF_g IF_g'
  X <- model.matrix(fit)
  U <- X * (d$w * (d$y - fitted(fit)))
  bread <- solve(crossprod(X * sqrt(d$w * fitted(fit) * (1 - fitted(fit)))))
  Ug <- rowsum(U, cluster)
  IFb <- Ug %*% bread
  cat(name, "sandwich check", max(abs(crossprod(IFb) - V)) / max(abs(V)), "\n"); stopifnot(max(abs(crossprod(IFb) - V)) < 1e-8 * max(abs(V)))
  IF <- IFb %*% t(J)                      # clusters x functionals (rows ordered by sorted cluster label)
  # population term
  P <- t(sapply(seq_len(nrow(units)), function(i) theta_unit(base$st, i)))
  cen <- sweep(P, 2, c(th0[seq_len(nrat)], rep(0, nrat), th0[-seq_len(2 * nrat)]))
  cen[, nrat + seq_len(nrat)] <- P[, nrat + seq_len(nrat)]   # already centred
  popg <- rowsum(om * cen / sum(om), ucl)
  IF <- IF + popg[rownames(IF), , drop = FALSE]
  se <- sqrt(colSums(IF^2))
  med <- sapply(list(base$S1, base$S0), function(S) { k <- which(S <= 0.5); if (length(k)) k[1] - 1 else NA })
  L <- length(times); M <- length(taus)
  list(name = name, coef = unname(beta), names = names(beta), se = unname(sqrt(diag(V))),
       Kmax = Kmax, times = times, taus = taus,
       surv_diff = th0[1:L], surv_diff_se = se[1:L],
       log_rr = th0[L + 1:L], log_rr_se = se[L + 1:L],
       rmst_diff = th0[2 * L + 1:M], rmst_diff_se = se[2 * L + 1:M],
       S1 = base$S1[-1], S0 = base$S0[-1], S1_se = se[2 * L + M + 1:Kmax], S0_se = se[2 * L + M + Kmax + 1:Kmax],
       median_diff = med[1] - med[2])
}

mmA <- function(units, k, arm) cbind(1, arm, k, k^2)
mmAx <- function(units, k, arm) cbind(1, arm, k, k^2, units$x)
kn <- rcspline.eval(A$k, nk = 4, knots.only = TRUE)
mmArcs <- function(units, k, arm) cbind(1, arm, rcspline.eval(rep(k, nrow(units)), knots = kn, inclx = TRUE))
mmB <- function(units, k, arm) cbind(1, arm, k, k^2, units$trial, units$trial^2, units$x)
res <- list(
  A_none = case(A, y ~ a + k + I(k^2), mmA, c(3, 6, 10), c(10, 7.5), "A_none"),
  A_x = case(A, y ~ a + k + I(k^2) + x, mmAx, c(3, 6, 10), c(10), "A_x"),
  A_rcs4 = case(A, y ~ a + rcs(k, 4), mmArcs, c(3, 6), c(10), "A_rcs4"),
  B_trials = case(B, y ~ a + k + I(k^2) + trial + I(trial^2) + x, mmB, c(3, 6), c(10), "B_trials")
)
res$A_rcs4$knots <- unname(kn)

# ---- Cox, breslow and efron, counting-process rows (k, k+1] with per-period weights -------------
cox <- list()
for (ties in c("breslow", "efron")) {
  f <- coxph(Surv(k, k + 1, y) ~ a + x, data = A, weights = w, cluster = patient, ties = ties,
             control = coxph.control(eps = 1e-11, iter.max = 50))
  cox[[ties]] <- list(coef = unname(coef(f)), se = unname(sqrt(diag(f$var))))
}
# replicated rows: weight 3 vs three copies (breslow identical, efron not)
A3 <- A[rep(seq_len(nrow(A)), 3), ]
for (ties in c("breslow", "efron")) {
  f1 <- coxph(Surv(k, k + 1, y) ~ a + x, data = A, weights = rep(3, nrow(A)), ties = ties)
  f3 <- coxph(Surv(k, k + 1, y) ~ a + x, data = A3, ties = ties)
  cox[[paste0(ties, "_weight3")]] <- unname(coef(f1)); cox[[paste0(ties, "_copies3")]] <- unname(coef(f3))
}

# ---- risk ratio of Kaplan-Meier curves ------------------------------------------------------------
last <- A[ave(A$k, A$unit, FUN = max) == A$k, ]
km <- list()
s <- summary(survfit(Surv(k + 1, y) ~ a, data = last), times = c(3, 6, 10), extend = TRUE)
S <- matrix(s$surv, ncol = 2); SE <- matrix(s$std.err, ncol = 2)     # columns: a = 0, a = 1
km$greenwood <- list(times = c(3, 6, 10), log_rr = log(1 - S[, 2]) - log(1 - S[, 1]),
                     se = sqrt((SE[, 2] / (1 - S[, 2]))^2 + (SE[, 1] / (1 - S[, 1]))^2))
fw <- survfit(Surv(k, k + 1, y) ~ a, data = A, weights = w, id = patient, robust = TRUE)
s <- summary(fw, times = c(3, 6, 10), extend = TRUE)
S <- matrix(s$surv, ncol = 2); SE <- matrix(s$std.err, ncol = 2)
km$ij <- list(times = c(3, 6, 10), log_rr = log(1 - S[, 2]) - log(1 - S[, 1]),
              se = sqrt((SE[, 2] / (1 - S[, 2]))^2 + (SE[, 1] / (1 - S[, 1]))^2))

write_json(list(pooled = res, cox = cox, km = km, R = R.version.string,
                survival = as.character(packageVersion("survival")),
                sandwich = as.character(packageVersion("sandwich"))),
           file.path(out, "outcome_period.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("written", file.path(out, "outcome_period.json"), "\n")
