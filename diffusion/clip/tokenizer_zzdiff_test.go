package clip

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

func TestZZDiff(t *testing.T) {
	dir := os.Getenv("DIFF_DIR")
	if dir == "" {
		t.Skip()
	}
	for _, c := range []struct{ in, ids, pipe string }{
		{"cp.jsonl", "cp.sd15.ids", "tiny-sd15"},
		{"rand.jsonl", "rand.sd15.ids", "tiny-sd15"},
		{"rand.jsonl", "rand.sd2v.ids", "tiny-sd2v"}, {"long.jsonl", "long.sd15.ids", "tiny-sd15"},
	} {
		tok, err := LoadTokenizer("/work/shared/refs/" + c.pipe + "/tokenizer")
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Open(dir + "/" + c.in)
		fo, _ := os.Open(dir + "/" + c.ids)
		si := bufio.NewScanner(fi)
		si.Buffer(make([]byte, 1<<20), 1<<20)
		so := bufio.NewScanner(fo)
		so.Buffer(make([]byte, 1<<20), 1<<20)
		bad, n := 0, 0
		for si.Scan() && so.Scan() {
			var s string
			var want []int
			json.Unmarshal(si.Bytes(), &s)
			json.Unmarshal(so.Bytes(), &want)
			got := tok.Encode(s)
			got = got[1 : len(got)-1]
			n++
			if !slices.Equal(got, want) {
				bad++
				if bad < 15 {
					t.Errorf("%s %q:\n got %v %q\nwant %v", c.ids, s, got, tok.Tokenize(s), want)
				}
			}
		}
		t.Logf("%s: %d/%d mismatches", c.ids, bad, n)
	}
}
