# Reference for tests/test_timeline_reference.py: survival::tmerge (event + tdc) and survSplit
# on a visits table, against causal_hcc.timeline (Timeline.split, Timeline.at).
# Run: Rscript tests/reference/timeline_tmerge.R   (from the repo root)
# Data: every patient has a visit at time 0 (tmerge's tdc gives NA before the first visit; ours
# carries the first one back, see docs/timeline.md), visits after the end of follow-up (ignored by
# tmerge, dropped by ours), visits at the end of follow-up, ties with the event time, missing values
# (tmerge's default na.rm = TRUE carries the previous value, as ours).
library(survival)
library(jsonlite)
set.seed(20261207)
n <- 40
pat <- data.frame(id = 1:n, fu = round(runif(n, 2, 24), 1), dead = rbinom(n, 1, 0.6))
vis <- do.call(rbind, lapply(1:n, function(i) {
  k <- sample(1:6, 1)
  m <- sort(unique(c(0, round(runif(k, 0, pat$fu[i] + 4), 1))))
  if (i %% 5 == 0) m <- sort(unique(c(m, pat$fu[i])))          # a visit at the end of follow-up
  data.frame(id = i, month = m, ecog = sample(0:3, length(m), TRUE), afp = round(exp(rnorm(length(m), 3)), 1))
}))
vis$ecog[sample(nrow(vis), 8)] <- NA
vis$afp[sample(which(vis$month > 0), 6)] <- NA
vis$ecog[vis$month == 0 & is.na(vis$ecog)] <- 1                # a value at time 0 for every patient
base <- tmerge(pat, pat, id = id, death = event(fu, dead))
tm <- tmerge(base, vis, id = id, ecog = tdc(month, ecog), afp = tdc(month, afp))
# survSplit at common cuts on top
cuts <- c(3, 7.5, 12)
ss <- survSplit(Surv(tstart, tstop, death) ~ ., data = tm, cut = cuts, episode = "ep")
ss <- ss[order(ss$id, ss$tstart), ]
out <- list(patients = pat, visits = vis,
            tmerge = tm[, c("id", "tstart", "tstop", "death", "ecog", "afp")],
            split = ss[, c("id", "tstart", "tstop", "death", "ecog", "afp")], cuts = cuts,
            R = R.version.string, survival = as.character(packageVersion("survival")))
write_json(out, "tests/reference/fixtures/timeline_tmerge.json", digits = NA, na = "null")
cat("wrote tests/reference/fixtures/timeline_tmerge.json:", nrow(tm), "tmerge rows,", nrow(ss), "split rows\n")
