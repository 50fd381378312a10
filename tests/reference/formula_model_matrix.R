# R's model.matrix for 120 random confounder lists (tests/test_formula_terms.py::test_random_formulas_code_as_r).
# Inputs from tests/reference/formula_model_matrix.py. For each list, the columns of
# model.matrix(~ entry1 + entry2 + ...) less the intercept: names, and two sums that identify a column
# (sum(x) and sum(x * row)), so that the fixture stays small.
# Run: Rscript tests/reference/formula_model_matrix.R   (from the repo root)
library(jsonlite)
d <- read.csv("tests/reference/fixtures/formula_model_matrix.csv", stringsAsFactors = TRUE)
forms <- fromJSON("tests/reference/fixtures/formula_model_matrix_input.json", simplifyVector = FALSE)
row <- seq_len(nrow(d))
out <- lapply(forms, function(f) {
  rhs <- paste(unlist(f), collapse = " + ")
  m <- model.matrix(as.formula(paste("~", rhs)), d)[, -1, drop = FALSE]
  list(rhs = rhs, names = colnames(m), sum = unname(colSums(m)), wsum = unname(colSums(m * row)),
       rank = qr(cbind(1, m))$rank)
})
writeLines(toJSON(list(models = out, R = R.version.string), digits = NA, auto_unbox = TRUE),
           "tests/reference/fixtures/formula_model_matrix.json")
cat("wrote tests/reference/fixtures/formula_model_matrix.json\n")
