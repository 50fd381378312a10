# Reference values for tests/test_dates_codes.py: the Stanford heart-transplant
# data (survival::jasa) with its real calendar dates and R-style codes.
# Writes tests/data/jasa_dates.csv (ISO dates; status 1 = alive, 2 = dead as in
# survival's lung data; transplanted "yes"/"no") and the hazard ratios R gives
# on day-based times built as in the survival vignette "Using time dependent
# covariates" (section 3.1): futime = pmax(0.5, fu.date - accept.dt); a
# transplant on the day of death is moved half a day earlier.
# Run: Rscript tests/reference/data_jasa_dates.R   (from the repo root)
library(survival)
library(jsonlite)
j <- jasa
j$id <- seq_len(nrow(j))
j$age <- round(j$age, 6)   # the CSV holds what R fits
csv <- data.frame(
  id = j$id,
  accepted_on = format(j$accept.dt, "%Y-%m-%d"),
  transplant_on = ifelse(is.na(j$tx.date), "", format(j$tx.date, "%Y-%m-%d")),
  last_seen_on = format(j$fu.date, "%Y-%m-%d"),
  status = ifelse(j$fustat == 1, 2L, 1L),
  transplanted = ifelse(j$transplant == 1, "yes", "no"),
  age = j$age,
  surgery = j$surgery)
write.csv(csv, "tests/data/jasa_dates.csv", row.names = FALSE, na = "")

pat <- with(j, data.frame(
  id = id,
  futime = pmax(.5, as.numeric(fu.date - accept.dt)),
  fustat = fustat,
  txtime = ifelse(tx.date == fu.date, as.numeric(tx.date - accept.dt) - .5,
                  as.numeric(tx.date - accept.dt)),
  transplant = transplant, age = age, surgery = surgery))
s <- tmerge(pat[, c("id", "age", "surgery")], pat, id = id, death = event(futime, fustat))
s <- tmerge(s, pat, id = id, trt = tdc(txtime))

naive <- coxph(Surv(futime, fustat) ~ transplant, data = pat, ties = "efron")
tv <- coxph(Surv(tstart, tstop, death) ~ trt, data = s, cluster = id, ties = "efron")
tvm <- coxph(Surv(tstart, tstop, death) ~ trt + age + surgery, data = s, cluster = id, ties = "efron")
res <- list(
  futime = pat$futime, txtime = pat$txtime,
  naive = list(hr = unname(exp(coef(naive))), se = unname(sqrt(diag(vcov(naive))))),
  time_varying = list(hr = unname(exp(coef(tv))), se = unname(sqrt(diag(tv$var)))),
  time_varying_multivariable = list(hr = unname(exp(coef(tvm)[1])), se = unname(sqrt(diag(tvm$var)))[1]),
  R = R.version.string, survival = as.character(packageVersion("survival")))
write_json(res, "tests/reference/fixtures/data_jasa_dates.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
