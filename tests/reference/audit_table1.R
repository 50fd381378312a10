# Reference p-values for causal_hcc.audit: Fisher exact, Pearson chi-square
# and Yates-corrected chi-square for every binary row of Zhang et al. (2024)
# Table 1 and the two imbalances quoted in the text (operated 26 vs 124).
# Run: Rscript tests/reference/audit_table1.R  (writes fixtures/audit_table1.json)
library(jsonlite)
rows <- list(
  male = c(22, 110), hbv = c(24, 107), afp_ge_400 = c(21, 88),
  lymph_node_met = c(13, 57), lung_met = c(5, 40), bone_met = c(1, 22),
  adrenal_met = c(3, 8), abdominal_met = c(7, 23), bclc_d = c(2, 4),
  portal_vein_invasion = c(10, 58), hepatic_vein_invasion = c(6, 15),
  first_line_effective = c(20, 99), tace_haic = c(10, 40),
  multiple_primary = c(9, 32), oligometastases = c(12, 28), metastatic_sd = c(0, 19)
)
out <- lapply(rows, function(x) {
  m <- matrix(c(x[1], 26 - x[1], x[2], 124 - x[2]), nrow = 2, byrow = TRUE)
  list(treated = x[1], control = x[2],
       fisher = fisher.test(m)$p.value,
       pearson = suppressWarnings(chisq.test(m, correct = FALSE)$p.value),
       yates = suppressWarnings(chisq.test(m, correct = TRUE)$p.value))
})
out$`_provenance` <- list(R = R.version.string, script = "tests/reference/audit_table1.R")
dir.create("tests/reference/fixtures", showWarnings = FALSE, recursive = TRUE)
write(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE),
      "tests/reference/fixtures/audit_table1.json")
