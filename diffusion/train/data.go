package train

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/disintegration/imaging"

	"github.com/pigment-ai/pigment/diffusion/imageio"
	"github.com/pigment-ai/pigment/diffusion/train/shapes"
)

// Example is one training image with its caption.
type Example struct {
	// Key identifies the image, so the latents of an image seen before can
	// be reused; equal keys must mean equal images.
	Key     string
	Image   []float32 // [3, Size, Size], RGB in [-1, 1]
	Caption string
}

// Dataset is a deterministic, indexable stream of training examples:
// Example(i) depends only on i, so a resumed run sees the same data.
type Dataset interface {
	// Example returns example i ≥ 0.
	Example(i int) Example
	// Size is the side of every image in pixels.
	Size() int
	// Words lists the caption words (lower case) a new tokenizer needs.
	Words() []string
}

// Shapes is the synthetic scene data set of package shapes: example i is
// the first scene of a sampler seeded by (Seed, i), rendered at ImageSize,
// or with probability Drills (decided by (Seed, i) too) a geometry drill:
// white on black (shapes.Sampler.NextDrill), or with probability
// ColourDrills among drills in palette colours (NextColourDrill).
type Shapes struct {
	Seed         uint64
	ImageSize    int
	Drills       float64
	ColourDrills float64
}

// String describes the data set's settings (checkpoints record it).
func (d Shapes) String() string {
	return fmt.Sprintf("shapes (seed %d, size %d, drills %g, colour drills %g)", d.Seed, d.ImageSize, d.Drills, d.ColourDrills)
}

// Example implements Dataset.
func (d Shapes) Example(i int) Example {
	s := shapes.NewSampler(d.Seed^(uint64(i)*0x9e3779b97f4a7c15), d.ImageSize)
	next := s.Next
	if d.Drills > 0 {
		r := rand.New(rand.NewPCG(d.Seed, uint64(i)))
		if r.Float64() < d.Drills {
			next = s.NextDrill
			if d.ColourDrills > 0 && r.Float64() < d.ColourDrills {
				next = s.NextColourDrill
			}
		}
	}
	scene, caption := next()
	return Example{Key: fmt.Sprint(scene), Image: shapes.ToCHW(shapes.Render(scene, d.ImageSize)), Caption: caption}
}

// Size implements Dataset.
func (d Shapes) Size() int { return d.ImageSize }

// Words implements Dataset.
func (d Shapes) Words() []string { return append(shapes.Words(), shapes.Punctuation()...) }

// Folder is a directory of images (.png, .jpg, .jpeg, .gif) each with a
// caption in a text file of the same base name (cat.png + cat.txt), the
// usual layout of fine-tuning sets. Images are centre-cropped to a square
// and resized (Lanczos) to ImageSize when loaded; epochs visit every image
// once in an order shuffled by (seed, epoch).
type Folder struct {
	Dir       string
	ImageSize int
	seed      uint64
	images    [][]float32
	captions  []string
	names     []string
}

// maxFolderPixels bounds a single training image when decoding.
const maxFolderPixels = 64 << 20

// LoadFolder reads every captioned image of dir. An image without a
// caption file, an unreadable image or an empty folder is an error naming
// the file.
func LoadFolder(dir string, imageSize int, seed uint64) (*Folder, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	f := &Folder{Dir: dir, ImageSize: imageSize, seed: seed}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || !slices.Contains([]string{".png", ".jpg", ".jpeg", ".gif"}, ext) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		caption, err := os.ReadFile(strings.TrimSuffix(path, filepath.Ext(path)) + ".txt")
		if err != nil {
			return nil, fmt.Errorf("train: caption for %s: %w", path, err)
		}
		img, err := loadSquare(path, imageSize)
		if err != nil {
			return nil, err
		}
		f.images = append(f.images, img)
		f.captions = append(f.captions, strings.TrimSpace(string(caption)))
		f.names = append(f.names, e.Name())
	}
	if len(f.images) == 0 {
		return nil, fmt.Errorf("train: no captioned images (.png, .jpg, .gif with a .txt) in %s", dir)
	}
	return f, nil
}

func loadSquare(path string, size int) ([]float32, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	img, _, err := imageio.Decode(r, maxFolderPixels)
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	sq := imaging.Fill(img, size, size, imaging.Center, imaging.Lanczos)
	return imageio.ToTensor(sq, size, size).Data, nil
}

// Len returns the number of images.
func (f *Folder) Len() int { return len(f.images) }

// Example implements Dataset.
func (f *Folder) Example(i int) Example {
	n := len(f.images)
	epoch, j := i/n, i%n
	perm := rand.New(rand.NewPCG(f.seed, uint64(epoch))).Perm(n)
	k := perm[j]
	return Example{Key: f.names[k], Image: f.images[k], Caption: f.captions[k]}
}

// Size implements Dataset.
func (f *Folder) Size() int { return f.ImageSize }

// wordRE is a simplified CLIP pre-tokenizer: runs of letters, of digits, or
// single other symbols.
var wordRE = regexp.MustCompile(`\p{L}+|\p{N}|[^\s\p{L}\p{N}]`)

// Words implements Dataset: every distinct lower-case word of the captions.
func (f *Folder) Words() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range f.captions {
		for _, w := range wordRE.FindAllString(strings.ToLower(c), -1) {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	slices.Sort(out)
	return out
}
