# Reference values for tests/test_formula_terms.py: R's coding of formula terms (model.matrix's rule for an
# interaction without its main effects, duplicated terms, arithmetic in I(), awkward column names) and
# cox.zph(terms = TRUE) grouping each term's columns, on survival::veteran.
# Run: Rscript tests/reference/formula_terms.R   (from the repo root)
suppressPackageStartupMessages({
  library(survival)
  library(rms)
  library(jsonlite)
})
v <- read.csv("tests/reference/fixtures/foundation_veteran.csv")
v$celltype <- factor(v$celltype)             # levels in sorted order: adeno, large, smallcell, squamous
v$prior <- v$prior10 * 10
v$prior_f <- factor(v$prior10)
# awkward names: a dotted name, Python keywords, a leading digit, a space
v$ecog.ps <- v$karno / 10
v$lambda <- v$diagtime
v$class <- v$prior10
v$`2nd` <- v$age
v$`my col` <- v$karno

models <- list(
  interaction_only = "celltype:karno",
  interaction_with_factor = "celltype + celltype:karno",
  cross = "celltype * karno",
  duplicate_main_effect = "celltype + celltype * karno",
  two_factors_only = "celltype:prior_f",
  numeric_only = "karno:prior",
  three_way = "karno + celltype:karno:prior10",
  three_way_cross = "celltype * karno * prior10",
  grouped = "(celltype + karno):prior10",
  spline_terms = "rcs(age, 4) + celltype + karno",
  spline_interaction = "karno + rcs(age, 3):karno",
  arithmetic = "I(karno^2) + log(diagtime) + sqrt(age) + exp(karno / 100) + I((age - 60) / 10)",
  names = "log(lambda) + I(ecog.ps^2) + class + log(`2nd`) + `my col`"
)
out <- list()
for (nm in names(models)) {
  f <- as.formula(paste("Surv(time, status) ~ trt01 +", models[[nm]]))
  fit <- coxph(f, data = v, ties = "efron")
  cf <- coef(fit)
  z <- cox.zph(fit)                           # terms = TRUE (the default): one test per term
  tab <- z$table
  ok <- !is.na(cf)
  out[[nm]] <- list(
    rhs = models[[nm]],
    names = names(cf), coef = unname(ifelse(ok, cf, NA)),
    se = unname(ifelse(ok, sqrt(diag(vcov(fit)))[match(names(cf), colnames(vcov(fit)))], NA)),
    aliased = names(cf)[!ok],
    hr = unname(exp(cf["trt01"])), loglik = fit$loglik[2],
    zph = list(term = rownames(tab), chisq = unname(tab[, "chisq"]), df = unname(tab[, "df"]),
               p = unname(tab[, "p"]))
  )
}
out$meta <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
                 rms = as.character(packageVersion("rms")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
           "tests/reference/fixtures/formula_terms.json")
cat("wrote tests/reference/fixtures/formula_terms.json\n")
