package webui

// uPlot draws the ops page's charts: uPlot 1.6.32 (MIT licence, assets/vendor/uplot-LICENSE.txt),
// its uPlot.iife.min.js and uPlot.min.css from the npm package uplot@1.6.32 as published,
// renamed with their version. It draws on a canvas and styles through the CSSOM, both of
// which the strict CSP allows. vendorSums pins the files; to update, replace them, their
// names here and their sums (sha256sum), and read the release notes.
var uPlot = []string{"uplot-1.6.32.min.css", "uplot-1.6.32.min.js"}

// vendorSums are the SHA-256 sums of the files in assets/vendor, checked by the tests.
var vendorSums = map[string]string{
	"uplot-1.6.32.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
	"uplot-1.6.32.min.js":  "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
	"uplot-LICENSE.txt":    "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}
