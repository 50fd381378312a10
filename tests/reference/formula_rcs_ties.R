# Reference values for rcs() with few distinct values (tests/test_formula.py):
# rms::rcs / Hmisc::rcspline.eval reduce the knots with a warning instead of
# failing. Run from the repository root:  Rscript tests/reference/formula_rcs_ties.R
# Writes tests/reference/fixtures/formula_rcs_ties.json: per case the data, the
# number of knots asked, R's knots, basis and warning (or error).
suppressPackageStartupMessages({
  library(rms)
  library(jsonlite)
})
set.seed(20261127)
cases <- list(
  # 6 distinct values, 4 or 5 knots asked: knots = the 4 interior values
  six_values_k4 = list(x = rep(c(1, 2, 3, 5, 8, 13), times = c(3, 5, 4, 6, 2, 4)), k = 4),
  six_values_k5 = list(x = rep(c(1, 2, 3, 5, 8, 13), times = c(3, 5, 4, 6, 2, 4)), k = 5),
  # 7 distinct values, 5 knots: nxu - 2 = 5 <= 5, the interior values
  seven_values_k5 = list(x = rep(0:6, times = c(2, 9, 8, 7, 6, 5, 3)), k = 5),
  # 5 distinct values, 3 knots asked: interior values, exactly 3
  five_values_k3 = list(x = rep(c(10, 20, 30, 40, 50), each = 4), k = 3),
  # heavy ties, n >= 100: the default quantiles coincide -> alternate algorithm
  ties_n150_k4 = list(x = c(rep(0, 120), round(runif(30, 1, 40), 1)), k = 4),
  ties_n150_k5 = list(x = c(rep(2, 60), rep(3, 70), round(runif(20, 4, 30), 1)), k = 5),
  # heavy ties, n < 100 (outer knots then at the 5th smallest/largest)
  ties_n60_k4 = list(x = c(rep(1, 45), round(runif(15, 2, 9), 2)), k = 4),
  # an interior value holding most of the data: the default quantiles give 2 distinct knots,
  # Hmisc's alternate algorithm (2 k quantiles) finds 3 (n >= 100, and n < 100 where R then
  # overwrites the 1st and the k-th of the 2 k quantiles)
  alternate_n200_k4 = list(x = c(round(runif(50, 0, 4), 2), rep(5, 144), round(runif(6, 6, 10), 2)), k = 4),
  alternate_n80_k4 = list(x = c(round(runif(20, 0, 4), 2), rep(5, 58), round(runif(2, 6, 10), 2)), k = 4),
  # the same with too few values left: R stops
  alternate_fails_k4 = list(x = c(round(runif(8, 0, 4), 2), rep(5, 184), round(runif(8, 6, 10), 2)), k = 4),
  # 4 distinct values: R stops (fewer than 3 unique knots)
  four_values_k3 = list(x = rep(1:4, each = 5), k = 3)
)
out <- list(R_version = R.version.string, rms_version = as.character(packageVersion("rms")),
            Hmisc_version = as.character(packageVersion("Hmisc")), cases = list())
for (nm in names(cases)) {
  cs <- cases[[nm]]
  warn <- character(0)
  res <- withCallingHandlers(
    tryCatch(rcs(cs$x, cs$k), error = function(e) e),
    warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") })
  if (inherits(res, "error")) {
    out$cases[[nm]] <- list(x = cs$x, k = cs$k, error = TRUE, warning = I(warn))
  } else {
    out$cases[[nm]] <- list(x = cs$x, k = cs$k, error = FALSE, warning = I(warn),
                            knots = as.numeric(attr(res, "parms")), basis = unclass(res)[, , drop = FALSE])
  }
  cat(nm, ":", if (inherits(res, "error")) "error" else as.numeric(attr(res, "parms")), "|", warn, "\n")
}
write_json(out, "tests/reference/fixtures/formula_rcs_ties.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, matrix = "rowmajor")
