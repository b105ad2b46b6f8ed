module github.com/pigment-ai/pigment

go 1.26.0

require (
	github.com/disintegration/imaging v1.6.2
	golang.org/x/image v0.48.0
	golang.org/x/text v0.44.0
	gonum.org/v1/gonum v0.17.0
)
