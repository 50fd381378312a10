# Writes tests/data/cohort.sas7bdat, the SAS file the reader test reads back.
# pyreadstat can read but not write .sas7bdat; haven (>= 2.0) writes it via the
# same ReadStat C library. Run from the repository root:
#   Rscript tests/data/make_sas7bdat.R
# Produced with haven 2.5.1 (R 4.x). The values are those of
# tests/test_io.py::SAS_EXPECTED.
library(haven)
df <- data.frame(
  id = c(1, 2, 3, 4),
  os_months = c(1.5, 2.25, 3, 10),
  os_event = c(1, 0, 1, 1),
  surgery = c(1, 0, 0, 1),
  bclc = c("C", "D", "C", "B"),
  stringsAsFactors = FALSE
)
write_sas(df, "tests/data/cohort.sas7bdat")
