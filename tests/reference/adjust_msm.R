# Reference values for adjustment 'msm' (tests/adjust/test_reference_msm.py): a marginal structural Cox model
# with stabilised inverse-probability-of-treatment weights for initiation (Hernan, Brumback & Robins 2000),
# constructed here independently of the Python code, on data this script generates.
#
# Data: the Havercroft & Didelez (Stat Med 2012;31:4190-206) algorithm in continuous time (as
# tests/havercroft.py, but with R's own random numbers): latent health U0, death threshold -log(1 - U0),
# hazard exp(-3 - 0.5 * A(t)) (the true marginal structural log HR is -0.5), a CD4-like L measured every
# K = 5 months that follows a random walk of U, drives treatment initiation and rises by 150 one check-up
# after treatment starts; a baseline covariate v in the treatment and loss models; in case "loss", loss to
# follow-up at the end of a block depending on L, treatment and v (roles.censored).
# Written: fixtures/adjust_msm_<case>_patients.csv and _visits.csv.
#
# MSM (grid h = 5, decision k at time k h, L known at k h by last observation carried forward):
#   denominator glm(A ~ k + I(k^2) + v + L), numerator glm(A ~ k + I(k^2) + v) [numerator "time": A ~ k + I(k^2)]
#   on the intervals at risk of starting (alive, under follow-up and untreated at k h; A = 1 when treatment
#   starts in [k h, (k + 1) h)); SW(k) = cumulative product of P_num / P_den of what happened, constant after
#   initiation.
#   loss (case "loss"): glm(C ~ k + I(k^2) + v + L + treated) over num. glm(C ~ k + I(k^2) + v + treated) on the
#   intervals under follow-up without the event in them; C = lost in (k h, (k + 1) h]; WC(k) = product over the
#   intervals before k of P_num(C = 0) / P_den(C = 0).
#   outcome: (0, T] split at the grid and the treatment time (survSplit), weight SW * WC at each piece's start,
#   coxph(Surv(start, stop, event) ~ treated + v, weights, cluster = id) [numerator "time": ~ treated].
# Run: Rscript tests/reference/adjust_msm.R   (from the repo root)
suppressMessages({library(survival); library(jsonlite)})
out <- "tests/reference/fixtures"
ctrl <- glm.control(epsilon = 1e-14, maxit = 100)

simulate <- function(n, K = 5, blocks = 8, loss = FALSE) {
  U <- runif(n); thr <- -log1p(-U); v <- rnorm(n)
  L <- pmax(qgamma(U, shape = 3, scale = 154) + rnorm(n, 0, 20), 0)
  time <- rep(K * blocks, n); event <- integer(n); lost <- integer(n); tstar <- rep(Inf, n)
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
    p <- plogis(-0.405 + 0.0205 * t0 - 0.00405 * (L - 500) + 0.3 * v)
    start <- alive & is.infinite(tstar) & runif(n) < p
    tstar[start] <- t0
    A <- is.finite(tstar) & tstar <= t0
    rate <- exp(-3 - 0.5 * A)
    need <- (thr - lam) / rate
    tl <- rep(Inf, n)
    if (loss) tl <- ifelse(runif(n) < plogis(-2.6 - 0.004 * (L - 500) + 0.5 * A + 0.3 * v), K, Inf)
    dies <- alive & need <= K & need <= tl
    goes <- alive & !dies & is.finite(tl)
    time[dies] <- t0 + need[dies]; event[dies] <- 1L
    time[goes] <- t0 + tl[goes]; lost[goes] <- 1L
    done <- done | dies | goes
    lam <- lam + rate * K
    ap2 <- ap; ap <- A
  }
  treated <- is.finite(tstar) & tstar < time
  pts <- data.frame(id = 1:n, time = time, event = event, treated = as.integer(treated),
                    treatment_time = ifelse(treated, tstar, NA), v = v, lost = lost)
  vis <- do.call(rbind, vis)
  vis <- vis[order(vis$id, vis$time), ]
  vis <- vis[vis$time < pts$time[vis$id], ]
  list(pts = pts, vis = vis)
}

locf <- function(vis, id, t) {   # L of patient id at time t: last visit at or before t
  sapply(seq_along(id), function(i) { v <- vis[vis$id == id[i] & vis$time <= t[i], ]; v$L[nrow(v)] })
}

msm <- function(d, numerator = "baseline", loss = FALSE, h = 5) {
  pts <- d$pts; vis <- d$vis
  tt <- ifelse(!is.na(pts$treatment_time) & pts$treatment_time < pts$time, pts$treatment_time, Inf)
  # decision intervals at risk of starting
  rec <- do.call(rbind, lapply(seq_len(nrow(pts)), function(i) {
    k <- 0:(ceiling(pts$time[i] / h) - 1)
    k <- k[k * h <= tt[i]]
    data.frame(id = pts$id[i], k = k)
  }))
  rec$A <- as.integer(tt[rec$id] >= rec$k * h & tt[rec$id] < (rec$k + 1) * h)
  rec$v <- pts$v[rec$id]
  rec$L <- locf(vis, rec$id, rec$k * h)
  den <- glm(A ~ k + I(k^2) + v + L, family = binomial, data = rec, control = ctrl)
  num <- if (numerator == "baseline") glm(A ~ k + I(k^2) + v, family = binomial, data = rec, control = ctrl) else
    glm(A ~ k + I(k^2), family = binomial, data = rec, control = ctrl)
  pd <- fitted(den); pn <- fitted(num)
  rec$f <- ifelse(rec$A == 1, pn / pd, (1 - pn) / (1 - pd))
  rec$SW <- ave(rec$f, rec$id, FUN = cumprod)
  # loss to follow-up weights
  WC <- NULL
  if (loss) {
    lr <- do.call(rbind, lapply(seq_len(nrow(pts)), function(i) {
      data.frame(id = pts$id[i], k = 0:(ceiling(pts$time[i] / h) - 1))
    }))
    klast <- ceiling(pts$time / h) - 1
    lr$C <- as.integer(pts$lost[lr$id] == 1 & lr$k == klast[lr$id])
    lr$v <- pts$v[lr$id]
    lr$L <- locf(vis, lr$id, lr$k * h)
    lr$trt <- as.integer(tt[lr$id] <= lr$k * h)
    fitr <- !(pts$event[lr$id] == 1 & lr$k == klast[lr$id])
    cden <- glm(C ~ k + I(k^2) + v + L + trt, family = binomial, data = lr[fitr, ], control = ctrl)
    cnum <- glm(C ~ k + I(k^2) + v + trt, family = binomial, data = lr[fitr, ], control = ctrl)
    q <- (1 - predict(cnum, lr, type = "response")) / (1 - predict(cden, lr, type = "response"))
    lr$WC <- ave(q, lr$id, FUN = function(x) c(1, head(cumprod(x), -1)))
    WC <- lr
  }
  # outcome rows
  cuts <- seq(h, max(pts$time), by = h)
  base <- data.frame(id = pts$id, tstart = 0, tstop = pts$time, event = pts$event)
  s <- survSplit(Surv(tstart, tstop, event) ~ ., data = base, cut = cuts, start = "tstart", end = "tstop")
  # split at the treatment times (multiples of h here, but split anyway as tmerge does)
  extra <- do.call(rbind, lapply(seq_len(nrow(s)), function(j) {
    r <- s[j, ]; x <- tt[r$id]
    if (is.finite(x) && x > r$tstart && x < r$tstop) {
      rbind(transform(r, tstop = x, event = 0), transform(r, tstart = x))
    } else r
  }))
  s <- extra[order(extra$id, extra$tstart), ]
  s$treated <- as.integer(s$tstart >= tt[s$id])
  s$v <- pts$v[s$id]
  kk <- floor(s$tstart / h + 1e-9)
  kmax <- tapply(rec$k, rec$id, max)[as.character(s$id)]
  key <- paste(s$id, pmin(kk, kmax))
  s$w <- rec$SW[match(key, paste(rec$id, rec$k))]
  if (loss) s$w <- s$w * WC$WC[match(paste(s$id, kk), paste(WC$id, WC$k))]
  f <- if (numerator == "baseline") coxph(Surv(tstart, tstop, event) ~ treated + v, data = s, weights = w,
                                          cluster = id, control = coxph.control(eps = 1e-11)) else
    coxph(Surv(tstart, tstop, event) ~ treated, data = s, weights = w, cluster = id,
          control = coxph.control(eps = 1e-11))
  fw <- rec$SW   # summary of the initiation weights on the decision intervals
  list(coef = unname(coef(f)), se = unname(sqrt(diag(f$var))), den = unname(coef(den)), num = unname(coef(num)),
       n_rows = nrow(s), sw_mean = mean(fw), sw_max = max(fw),
       cden = if (loss) unname(coef(cden)) else NULL, cnum = if (loss) unname(coef(cnum)) else NULL)
}

set.seed(19)
d1 <- simulate(400)
set.seed(20)
d2 <- simulate(400, loss = TRUE)
for (nm in c("plain", "loss")) {
  d <- if (nm == "plain") d1 else d2
  write.csv(d$pts, file.path(out, sprintf("adjust_msm_%s_patients.csv", nm)), row.names = FALSE, na = "")
  write.csv(d$vis, file.path(out, sprintf("adjust_msm_%s_visits.csv", nm)), row.names = FALSE)
}
res <- list(plain = msm(d1), plain_time = msm(d1, numerator = "time"), loss = msm(d2, loss = TRUE))
write_json(c(res, list(R = R.version.string, survival = as.character(packageVersion("survival")))),
           file.path(out, "adjust_msm.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("written", file.path(out, "adjust_msm.json"), "\n")
