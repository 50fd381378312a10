# Fine-Gray with the censoring distribution of the *real* censoring only, built by hand
# (issue 21; sourced by tests/reference/core_cmprsk_artificial.R and outcome_competing.R).
#
# survival::finegray() estimates G, the censoring distribution of its weights, by the
# unweighted Kaplan-Meier curve of every subject's last row with status 0. In designs whose
# IPC weights stand for artificially censored units (clone-censor, per-protocol trials)
# those censorings must not count again: here G is the Kaplan-Meier curve of the real
# censorings only -- the artificially censored rows stay in its risk set until their time
# (optionally with case weights: the censoring distribution of the weighted
# pseudo-population). Independent of causal_hcc's code, which follows finegray()'s
# interval layout: here a competing-event subject gets one row per later event time of the
# cause of interest instead, with weight w * G(u-) / G(T-) on (previous time, u]; events
# precede censorings at tied times (as finegray()), so G(u-) is the product over the
# censoring times strictly before u. The Cox model on these rows gives the same risk sets,
# hence the same coefficients and (cluster-summed) robust variance as finegray()'s layout.
#
# fg_real(start, stop, status, id, w, art, weighted, strata): data.frame of the rows (id, row =
# input row, a, b, status, wt) and attribute "G" (per stratum: censoring times and G after each).
fg_real <- function(start, stop, status, id, w, art, weighted = FALSE, strata = NULL, cause = 1) {
  n <- length(stop)
  if (is.null(strata)) strata <- rep(1, n)
  ord <- order(id, stop)
  last <- logical(n)
  last[ord[!duplicated(id[ord], fromLast = TRUE)]] <- TRUE
  cens <- last & status == 0 & !art
  gw <- if (weighted) w else rep(1, n)
  out <- list(); Gs <- list()
  for (s in sort(unique(strata))) {
    k <- strata == s
    ev_u <- sort(unique(stop[k & status == cause]))
    if (!length(ev_u)) next
    ct <- sort(unique(stop[k & cens]))
    # Kaplan-Meier of the real censoring: at risk at c are rows with start < c <= stop, except the
    # rows with an event at c (events come first)
    h <- vapply(ct, function(c) {
      atrisk <- k & start < c & stop >= c & !(status != 0 & stop == c)
      sum(gw[k & cens & stop == c]) / sum(gw[atrisk])
    }, numeric(1))
    G <- cumprod(1 - h)
    Gs[[as.character(s)]] <- list(time = ct, surv = G)
    Gminus <- function(x) vapply(x, function(v) { j <- sum(ct < v); if (j == 0) 1 else G[j] }, numeric(1))
    # the original rows: competing-event rows end at T with status 0
    r0 <- which(k)
    out[[length(out) + 1]] <- data.frame(row = r0, a = start[r0], b = stop[r0],
                                         status = as.integer(status[r0] == cause), wt = w[r0], strat = s)
    comp <- which(k & last & status != 0 & status != cause)
    for (i in comp) {
      u <- ev_u[ev_u > stop[i]]
      if (!length(u)) next
      out[[length(out) + 1]] <- data.frame(row = i, a = c(stop[i], u[-length(u)]), b = u, status = 0L,
                                           wt = w[i] * Gminus(u) / Gminus(stop[i]), strat = s)
    }
  }
  res <- do.call(rbind, out)
  res$id <- id[res$row]
  attr(res, "G") <- Gs
  res
}
