# Export TrialEmulation's example data sets to the CSV files in this folder.
#
# Usage: Rscript export_trialemulation.R PATH/TO/TrialEmulation   (a clone of
# https://github.com/Causal-LDA/TrialEmulation, tested at commit f432103f, version 0.0.4.9)
# then: gzip -9 -n data_censored.csv trial_example.csv
# With the package installed, `data(data_censored, package = "TrialEmulation")` gives the same tables.
args <- commandArgs(trailingOnly = TRUE)
repo <- if (length(args)) args[1] else "TrialEmulation"
for (name in c("data_censored", "trial_example")) {
  e <- new.env()
  load(file.path(repo, "data", paste0(name, ".rda")), envir = e)
  x <- get(name, envir = e)
  write.csv(x, paste0(name, ".csv"), row.names = FALSE)
  cat(name, nrow(x), "rows,", length(unique(x$id)), "patients\n")
}
