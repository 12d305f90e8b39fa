"""Reports written after every run and campaign: report.json, junit.xml, report.html."""
