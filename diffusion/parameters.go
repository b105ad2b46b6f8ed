package diffusion

import (
	"fmt"
	"strconv"
	"strings"
)

// parameters formats the generation parameters of one image the way
// AUTOMATIC1111's web UI writes them into its PNGs ("infotext"), which
// ComfyUI, InvokeAI and image browsers read back:
//
//	a photo of a cat
//	Negative prompt: blurry
//	Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1, Size: 512x512, Model: sd15
//
// Optional keys (Denoising strength, Clip skip, Eta, Guidance rescale, RNG,
// Batch size/pos) follow when they apply.
func (m *Model) parameters(r Request, prompt, negative string, pos int) string {
	var b strings.Builder
	b.WriteString(prompt)
	if negative != "" {
		b.WriteString("\nNegative prompt: ")
		b.WriteString(negative)
	}
	fields := [][2]string{
		{"Steps", strconv.Itoa(r.Steps)},
		{"Sampler", r.Sampler.DisplayName()},
		{"CFG scale", formatFloat(r.GuidanceScale)},
		{"Seed", strconv.FormatUint(r.Seed, 10)},
		{"Size", fmt.Sprintf("%dx%d", r.Width, r.Height)},
		{"Model", m.Name},
	}
	if r.InitImage != nil {
		fields = append(fields, [2]string{"Denoising strength", formatFloat(r.Strength)})
	}
	if r.ClipSkip > 1 {
		fields = append(fields, [2]string{"Clip skip", strconv.Itoa(r.ClipSkip)})
	}
	if r.Eta != 0 {
		fields = append(fields, [2]string{"Eta", formatFloat(r.Eta)})
	}
	if r.GuidanceRescale != 0 {
		fields = append(fields, [2]string{"Guidance rescale", formatFloat(r.GuidanceRescale)})
	}
	if r.RNG == "cuda" {
		fields = append(fields, [2]string{"RNG", "NV"})
	} else {
		fields = append(fields, [2]string{"RNG", "CPU"})
	}
	if n := len(r.Prompts) * r.NumImagesPerPrompt; n > 1 {
		fields = append(fields, [2]string{"Batch size", strconv.Itoa(n)}, [2]string{"Batch pos", strconv.Itoa(pos)})
	}
	b.WriteByte('\n')
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f[0])
		b.WriteString(": ")
		b.WriteString(quoteParam(f[1]))
	}
	return b.String()
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// quoteParam quotes a value containing the separators of the infotext
// format, as AUTOMATIC1111's quote() does (JSON string syntax).
func quoteParam(s string) string {
	if !strings.ContainsAny(s, ",:\n\"") {
		return s
	}
	return strconv.Quote(s)
}
