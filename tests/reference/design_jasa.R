# Reference values for the time-zero designs (tests/design/test_reference_jasa.py).
# Stanford heart transplant data (survival::jasa), built as in ?jasa1:
# futime = max(0.5, fu.date - accept.dt); a transplant on the day of death is
# moved half a day earlier. Exports the per-patient data, R's tmerge/tdc split
# rows, counting-process coxph (Efron, cluster on patient), the score test
# (= Mantel-Byar), Simon-Makuch survfit, and a landmark Cox at day 30.
# Run: Rscript tests/reference/design_jasa.R   (from the repo root)
library(survival)
library(jsonlite)
out <- "tests/reference/fixtures"
jasa$id <- seq_len(nrow(jasa))
pat <- with(jasa, data.frame(
  id = id,
  futime = pmax(.5, as.numeric(fu.date - accept.dt)),
  fustat = fustat,
  txtime = ifelse(tx.date == fu.date, as.numeric(tx.date - accept.dt) - .5,
                  as.numeric(tx.date - accept.dt)),
  age = age - 48,
  year = as.numeric(accept.dt - as.Date("1967-10-01")) / 365.25,
  surgery = surgery))
pat$transplant <- as.integer(!is.na(pat$txtime))
write.csv(pat, file.path(out, "design_jasa_patients.csv"), row.names = FALSE, na = "")

base <- tmerge(pat[, c("id", "age", "year", "surgery")], pat, id = id,
               death = event(futime, fustat))
s <- tmerge(base, pat, id = id, trt = tdc(txtime))
s <- s[order(s$id, s$tstart), ]
write.csv(s[, c("id", "tstart", "tstop", "death", "trt")],
          file.path(out, "design_jasa_split.csv"), row.names = FALSE)

fit1 <- coxph(Surv(tstart, tstop, death) ~ trt, data = s, cluster = id, ties = "efron")
fit4 <- coxph(Surv(tstart, tstop, death) ~ trt + age + year + surgery, data = s,
              cluster = id, ties = "efron")
fit1m <- coxph(Surv(tstart, tstop, death) ~ trt, data = s, ties = "efron")
sc <- summary(fit1m)$sctest
sm <- survfit(Surv(tstart, tstop, death) ~ trt, data = s)
smt <- summary(sm, times = c(50, 100, 200, 365, 730))

L <- 30
lm <- subset(pat, futime > L)
lm$trt <- as.integer(!is.na(lm$txtime) & lm$txtime <= L)
lm$t <- lm$futime - L
fitl <- coxph(Surv(t, fustat) ~ trt, data = lm, ties = "efron")
fitl4 <- coxph(Surv(t, fustat) ~ trt + age + year + surgery, data = lm, ties = "efron")

res <- list(
  n_rows = nrow(s),
  tv_trt = list(coef = unname(coef(fit1)), robust_se = unname(sqrt(diag(fit1$var))),
                naive_se = unname(sqrt(diag(fit1$naive.var)))),
  tv_adj = list(names = names(coef(fit4)), coef = unname(coef(fit4)),
                robust_se = unname(sqrt(diag(fit4$var)))),
  mantel_byar = list(chi2 = unname(sc["test"]), df = unname(sc["df"]), p = unname(sc["pvalue"])),
  simon_makuch = list(strata = as.character(smt$strata), time = smt$time, surv = smt$surv),
  landmark = list(L = L, n = nrow(lm), n_treated = sum(lm$trt), events = sum(lm$fustat),
                  treated_after = sum(!is.na(lm$txtime) & lm$txtime > L),
                  coef = unname(coef(fitl)), se = unname(sqrt(diag(vcov(fitl)))),
                  adj_coef = unname(coef(fitl4)), adj_se = unname(sqrt(diag(vcov(fitl4))))),
  R = R.version.string, survival = as.character(packageVersion("survival")))
write_json(res, file.path(out, "design_jasa.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
