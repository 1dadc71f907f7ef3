package webui

// What the external tests check.
var (
	VendorSums = vendorSums
	UPlot      = uPlot
)
