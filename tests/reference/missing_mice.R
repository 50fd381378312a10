# Reference values for causal_hcc.missing (multiple imputation, Rubin's rules).
#
# Run from the repository root:  Rscript tests/reference/missing_mice.R
# Writes
#   tests/reference/fixtures/missing_gbsg.csv   gbsg with MAR missingness induced in
#                                                'size' and 'pgr' (fixed seed)
#   tests/reference/fixtures/missing_mice.json  R's mice (pmm) + pool() results and
#                                                pool.scalar() on fixed numbers
# CI does not run R: the Python tests read these fixtures.
suppressPackageStartupMessages({
  library(survival)
  library(mice)
  library(jsonlite)
})
fx <- "tests/reference/fixtures"

## ------------------------------------------------ MAR missingness in gbsg ----
d <- survival::gbsg[, c("pid", "rfstime", "status", "hormon", "age", "meno", "size", "grade",
                        "nodes", "pgr", "er")]
set.seed(20240613)
n <- nrow(d)
# 'size' missing more often for older patients, for events and for the
# hormone-treated (MAR: depends on observed age, status, hormon only)
p_size <- plogis(-2.2 + 0.04 * (d$age - 53) + 0.9 * d$status + 0.6 * d$hormon)
# 'pgr' missing more often with many nodes and among events
p_pgr <- plogis(-2.4 + 0.08 * (d$nodes - 5) + 0.7 * d$status)
d$size[runif(n) < p_size] <- NA
d$pgr[runif(n) < p_pgr] <- NA
write.csv(d, file.path(fx, "missing_gbsg.csv"), row.names = FALSE, na = "")

## ------------------------------------------------ mice, as causal_hcc does ----
# predictors of each incomplete confounder: every other confounder, the
# treatment, the event indicator and the Nelson-Aalen H(T) (White & Royston
# 2009). survfit()'s cumhaz is Nelson-Aalen (d/n); mice::nelsonaalen() would
# give Fleming-Harrington increments at tied times (Efron ties of coxph).
na_fit <- survfit(Surv(rfstime, status) ~ 1, data = d)
d$H <- na_fit$cumhaz[match(d$rfstime, na_fit$time)]
imp_data <- d[, c("hormon", "age", "meno", "size", "grade", "nodes", "pgr", "er", "status", "H", "rfstime")]
pred <- make.predictorMatrix(imp_data)
pred[, "rfstime"] <- 0
meth <- make.method(imp_data)
meth[c("size", "pgr")] <- "pmm"
M <- 50
imp <- mice(imp_data, m = M, maxit = 10, method = meth, predictorMatrix = pred, donors = 5L,
            seed = 7, printFlag = FALSE)
fit <- with(imp, coxph(Surv(rfstime, status) ~ hormon + age + meno + size + grade + nodes + pgr + er,
                       ties = "efron"))
pl <- pool(fit)
ps <- as.data.frame(pl$pooled)
sm <- summary(pl)
row <- function(term) {
  i <- which(ps$term == term)
  list(estimate = ps$estimate[i], se = sm$std.error[i], ubar = ps$ubar[i], b = ps$b[i], t = ps$t[i],
       df = ps$df[i], riv = ps$riv[i], lambda = ps$lambda[i], fmi = ps$fmi[i], dfcom = ps$dfcom[i])
}
# complete-case and full-data fits for context
cc <- coxph(Surv(rfstime, status) ~ hormon + age + meno + size + grade + nodes + pgr + er, data = d)
full <- coxph(Surv(rfstime, status) ~ hormon + age + meno + size + grade + nodes + pgr + er,
              data = survival::gbsg)

## ------------------------------------------------ pool.scalar, fixed numbers ----
Q <- c(-0.412, -0.3871, -0.455, -0.3902, -0.4238)
U <- c(0.0131, 0.0127, 0.0140, 0.0129, 0.0133)
s_inf <- pool.scalar(Q, U)
s_fin <- pool.scalar(Q, U, n = 40, k = 1)
Q2 <- c(0.1, 0.35, -0.2, 0.6)           # large between-imputation variance
U2 <- c(0.01, 0.012, 0.011, 0.009)
s_big <- pool.scalar(Q2, U2, n = 25, k = 3)
keep <- function(s) s[c("m", "qbar", "ubar", "b", "t", "df", "r", "fmi")]

out <- list(
  R_version = R.version.string, mice_version = as.character(packageVersion("mice")),
  survival_version = as.character(packageVersion("survival")),
  m = M, maxit = 10, donors = 5,
  n_missing = list(size = sum(is.na(d$size)), pgr = sum(is.na(d$pgr)),
                   complete_cases = sum(complete.cases(d))),
  H = d$H,
  pooled = list(hormon = row("hormon"), size = row("size"), pgr = row("pgr"), nodes = row("nodes")),
  complete_case = list(hormon = unname(coef(cc)["hormon"]), se = unname(sqrt(diag(vcov(cc)))[1]),
                       n = cc$n, nevent = cc$nevent),
  full_data = list(hormon = unname(coef(full)["hormon"]), size = unname(coef(full)["size"]),
                   pgr = unname(coef(full)["pgr"])),
  pool_scalar = list(
    list(Q = Q, U = U, n = "Inf", k = 1, res = keep(s_inf)),
    list(Q = Q, U = U, n = 40, k = 1, res = keep(s_fin)),
    list(Q = Q2, U = U2, n = 25, k = 3, res = keep(s_big))
  )
)
write_json(out, file.path(fx, "missing_mice.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("hormon pooled:", unlist(row("hormon")[c("estimate", "se", "b", "fmi")]), "\n")
cat("size pooled:", unlist(row("size")[c("estimate", "se", "b", "fmi")]), "\n")
cat("pgr pooled:", unlist(row("pgr")[c("estimate", "se", "b", "fmi")]), "\n")
cat("missing:", unlist(out$n_missing), "\n")
