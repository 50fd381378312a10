# Reference values for monotone likelihood (causal_hcc.core.monotone, outcome.effects.infinite_hr_estimate)
# and the Firth-penalised IPTW hazard ratio with Kish-scaled weights (outcome.effects.firth_hr).
#
# Run from the repository root:  Rscript tests/reference/core_monotone.R
# Reads tests/reference/fixtures/core_veteran.csv (written by core_cox.R); writes
# tests/reference/fixtures/core_monotone.json.
#
# * Unpenalised: veteran with the 9 censored patients as the "treated" arm (no event among them): the
#   coefficient of `sep` runs off to -infinity. Its profile log partial likelihood at b is the loglik of
#   coxph(Surv(time, status) ~ karno + offset(b * sep)) (Efron ties); the supremum is taken at b = -40
#   and the upper limit of the profile-likelihood interval solves 2 (sup - l_p(b)) = qchisq(0.95, 1)
#   (uniroot).
# * Firth + IPTW: ATE weights from glm(A ~ karno, binomial) (A = sep, monotone; A = trt2, not monotone),
#   rescaled by sum(w) / sum(w^2) (they then sum to the Kish effective sample size); the penalised
#   partial likelihood l(b) + 0.5 log I(b) with l and I from coxph(init = b, iter.max = 0, weights = w)
#   (the independent maximisation of core_firth.R), profile limits by uniroot, penalised LR p-value.
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})
fx <- "tests/reference/fixtures"
vet <- read.csv(file.path(fx, "core_veteran.csv"))
vet$sep <- as.integer(vet$status == 0)
out <- list()

## ---------------------------------------------------------- unpenalised profile ----
prof <- function(b, covs) {
  ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100)
  f <- if (covs) coxph(Surv(time, status) ~ karno + offset(b * sep), data = vet, ties = "efron", control = ctl)
       else coxph(Surv(time, status) ~ offset(b * sep), data = vet, ties = "efron")
  f$loglik[length(f$loglik)]
}
for (covs in c(TRUE, FALSE)) {
  sup <- suppressWarnings(prof(-40, covs))
  g <- function(b) 2 * (sup - suppressWarnings(prof(b, covs))) - qchisq(0.95, 1)
  u <- uniroot(g, c(-10, 3), tol = 1e-13)$root
  out$unpenalised[[if (covs) "sep_karno" else "sep"]] <- list(loglik_sup = sup, upper = u,
                                                            lr_null = 2 * (sup - prof(0, covs)))
}

## ---------------------------------------------------------- Firth + Kish-scaled IPTW ----
penal <- function(b, w, A) {
  f <- suppressWarnings(coxph(Surv(time, status) ~ A, data = vet, init = b, ties = "efron", weights = w,
                              control = coxph.control(iter.max = 0)))
  v <- if (is.null(f$naive.var)) f$var else f$naive.var
  list(pl = f$loglik[2] + 0.5 * log(det(solve(v))), info = solve(v))
}
firth1 <- function(w, A) {
  fn <- function(b) penal(b, w, A)$pl
  b <- optimize(fn, c(-15, 15), maximum = TRUE, tol = 1e-14)$maximum
  for (i in 1:60) {  # Newton polish on a Richardson-extrapolated numerical gradient
    d <- function(h) (fn(b + h) - fn(b - h)) / (2 * h)
    st <- ((4 * d(5e-5) - d(1e-4)) / 3) / penal(b, w, A)$info[1, 1]
    b <- b + st
    if (abs(st) < 1e-12) break
  }
  pl <- fn(b)
  crit <- qchisq(0.95, 1)
  f <- function(v) 2 * (pl - fn(v)) - crit
  se <- sqrt(1 / penal(b, w, A)$info[1, 1])
  lims <- sapply(c(-1, 1), function(s) {
    hi <- b + s * se
    while (f(hi) < 0) hi <- hi + s * se
    uniroot(f, sort(c(b, hi)), tol = 1e-13)$root
  })
  list(coef = b, se = se, ci_lower = lims[1], ci_upper = lims[2],
       p = pchisq(2 * (pl - fn(0)), 1, lower.tail = FALSE), penalised_loglik = pl)
}
for (arm in c("sep", "trt2")) {
  A <- vet[[arm]]
  e <- fitted(glm(A ~ karno, family = binomial, data = vet))
  w <- ifelse(A == 1, 1 / e, 1 / (1 - e))
  wk <- w * sum(w) / sum(w^2)
  res <- firth1(wk, A)
  res$kish_sum <- sum(wk)
  out$firth_iptw[[arm]] <- res
}
out$meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), file.path(fx, "core_monotone.json"))
cat("wrote", file.path(fx, "core_monotone.json"), "\n")
