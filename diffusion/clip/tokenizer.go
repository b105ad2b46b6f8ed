package clip

// CLIP's byte-level BPE tokenizer, reproducing the slow transformers
// CLIPTokenizer (transformers v4.39.0,
// src/transformers/models/clip/tokenization_clip.py) without ftfy, as
// diffusers' Stable Diffusion pipelines call it:
//
//	tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True)
//
// The text is first split at the tokenizer's added tokens (the special
// tokens, PreTrainedTokenizer.tokenize with its tokens_trie); every other
// part is cleaned and pre-tokenised (tokenizer_text.go), each piece is
// UTF-8 encoded, every byte is mapped to a printable character (GPT-2's
// bytes_to_unicode), "</w>" is appended to the last one, and the BPE merges
// of merges.txt are applied by rank.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxLength is the CLIP context length used by Stable Diffusion pipelines
// (model_max_length in the tokenizer_config.json of every SD checkpoint,
// max_position_embeddings of the CLIP text model).
const MaxLength = 77

// endOfWord marks the last symbol of a word (CLIPTokenizer.bpe).
const endOfWord = "</w>"

// maxFileMerges is the number of merges CLIPTokenizer.__init__ reads from
// merges.txt: lines [1 : 49152-256-2+1] of the stripped file, that is
// everything after the first line, up to 48894 merges (the full CLIP
// vocabulary: 49152 minus the 256 byte symbols and 2 special tokens).
const maxFileMerges = 49152 - 256 - 2

// Cache bounds: pieces up to maxCachedPiece bytes are cached, and the
// cache is emptied when it reaches maxCacheEntries.
const (
	maxCachedPiece  = 256
	maxCacheEntries = 1 << 16
)

// Tokenizer is CLIP's BPE tokenizer (transformers CLIPTokenizer, slow
// version, without ftfy). It is safe for concurrent use.
type Tokenizer struct {
	// BOS, EOS and Pad are the ids of the begin-of-text, end-of-text and
	// padding tokens (49406, 49407 and 49407 for SD 1.x; SD 2.x pads with
	// "!", id 0).
	BOS, EOS, Pad int
	// Unk is the id given to BPE symbols that are not in the vocabulary
	// (<|endoftext|>).
	Unk int
	// MaxLength is the length of EncodePadded's output (model_max_length,
	// 77 for every Stable Diffusion checkpoint); at least 2.
	MaxLength int

	vocab   map[string]int
	decoder []string // token by id

	// added tokens are split off the text before anything else and keep
	// their vocabulary id (PreTrainedTokenizer's _added_tokens_encoder).
	added   []string
	addedID []int

	// BPE symbols are numbered by their vocabulary id; the byte symbols
	// that are not in the vocabulary come after it. symbols[s] is the
	// string of symbol s.
	symbols []string
	byteSym [256]int32 // symbol of a byte's character
	lastSym [256]int32 // symbol of a byte's character + "</w>"
	merges  map[uint64]bpeMerge

	byteDecoder map[rune]byte // inverse of bytesToUnicode

	mu    sync.RWMutex
	cache map[string][]int32
}

// bpeMerge is a merge rule: its rank (line in merges.txt) and the symbol it
// produces.
type bpeMerge struct {
	rank   int32
	result int32
}

// pairKey is the key of the symbol pair (a, b) in Tokenizer.merges.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// ByteAlphabet returns GPT-2's bytes_to_unicode table: the printable rune
// byte b is written as in vocab.json and merges.txt. A vocabulary holding
// every rune alone and with "</w>" can tokenize any text.
func ByteAlphabet() [256]rune { return bytesToUnicode() }

// bytesToUnicode is GPT-2's bytes_to_unicode (also in CLIPTokenizer): the
// printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' map to themselves, the
// other 68 bytes, in order, to U+0100, U+0101, ….
func bytesToUnicode() [256]rune {
	var t [256]rune
	n := rune(0)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}

// NewTokenizer returns a tokenizer for vocab (token -> id, as in
// vocab.json) and merges (in rank order, as in merges.txt after its
// header), with <|startoftext|>, <|endoftext|> as BOS and EOS (and unknown
// token) and padToken ("" for <|endoftext|>) as padding token, and MaxLength
// 77. The ids of vocab must be 0..len(vocab)-1, each once; the special tokens
// and every merge's two symbols and result must be in vocab. vocab is
// copied; a merge listed twice takes its last rank, as in Python's dict.
func NewTokenizer(vocab map[string]int, merges [][2]string, padToken string) (*Tokenizer, error) {
	spec := specialTokens{bos: startOfText, eos: endOfText, unk: endOfText, pad: padToken, maxLength: MaxLength}
	if spec.pad == "" {
		spec.pad = endOfText
	}
	t, err := newTokenizer(maps.Clone(vocab), merges, spec)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return t, nil
}

// mergeError reports a merge whose symbols or result are not in the
// vocabulary.
type mergeError struct {
	index   int // in the merges list
	a, b    string
	missing string
}

func (e *mergeError) Error() string {
	return fmt.Sprintf("merge %d %q %q: %q is not in the vocabulary", e.index, e.a, e.b, e.missing)
}

// specialTokens is what tokenizer_config.json and special_tokens_map.json
// say about special tokens.
type specialTokens struct {
	bos, eos, unk, pad string
	added              []string // further added tokens (added_tokens_decoder)
	maxLength          int
}

// newTokenizer builds the tokenizer; it takes ownership of vocab. An
// invalid merge gives a *mergeError.
func newTokenizer(vocab map[string]int, merges [][2]string, spec specialTokens) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("empty vocabulary")
	}
	if spec.maxLength < 2 {
		return nil, fmt.Errorf("max length %d leaves no room for BOS and EOS", spec.maxLength)
	}
	t := &Tokenizer{
		MaxLength:   spec.maxLength,
		vocab:       vocab,
		decoder:     make([]string, len(vocab)),
		merges:      make(map[uint64]bpeMerge, len(merges)),
		byteDecoder: make(map[rune]byte, 256),
		cache:       make(map[string][]int32),
	}
	seen := make([]bool, len(vocab))
	for tok, id := range vocab {
		if id < 0 || id >= len(vocab) {
			return nil, fmt.Errorf("vocabulary id %d of %q is outside [0, %d), the vocabulary size", id, tok, len(vocab))
		}
		if seen[id] {
			return nil, fmt.Errorf("vocabulary id %d is given to both %q and %q", id, tok, t.decoder[id])
		}
		seen[id] = true
		t.decoder[id] = tok
	}

	ids := make([]int, 4)
	for i, name := range [...]string{"bos", "eos", "unk", "pad"} {
		tok := [...]string{spec.bos, spec.eos, spec.unk, spec.pad}[i]
		id, ok := vocab[tok]
		if !ok {
			return nil, fmt.Errorf("%s token %q is not in the vocabulary", name, tok)
		}
		ids[i] = id
		t.addAdded(tok, id)
	}
	t.BOS, t.EOS, t.Unk, t.Pad = ids[0], ids[1], ids[2], ids[3]
	for _, tok := range spec.added {
		id, ok := vocab[tok]
		if !ok {
			return nil, fmt.Errorf("added token %q is not in the vocabulary", tok)
		}
		t.addAdded(tok, id)
	}

	// Symbols are vocabulary ids, plus the byte symbols missing from the
	// vocabulary (a small hand-made vocabulary need not have them all).
	t.symbols = t.decoder
	symbol := func(s string) int32 {
		if id, ok := vocab[s]; ok {
			return int32(id)
		}
		if len(t.symbols) == len(t.decoder) {
			t.symbols = slices.Clip(t.symbols) // append to a copy
		}
		t.symbols = append(t.symbols, s)
		return int32(len(t.symbols) - 1)
	}
	for b, r := range bytesToUnicode() {
		t.byteDecoder[r] = byte(b)
		t.byteSym[b] = symbol(string(r))
		t.lastSym[b] = symbol(string(r) + endOfWord)
	}
	var buf []byte
	for rank, m := range merges {
		buf = append(append(buf[:0], m[0]...), m[1]...)
		a, okA := vocab[m[0]]
		b, okB := vocab[m[1]]
		ab, okAB := vocab[string(buf)]
		if !okA || !okB || !okAB {
			missing := m[0]
			if okA {
				missing = m[1]
				if okB {
					missing = string(buf)
				}
			}
			return nil, &mergeError{index: rank, a: m[0], b: m[1], missing: missing}
		}
		// A merge listed twice keeps its last rank, as in Python's dict.
		t.merges[pairKey(int32(a), int32(b))] = bpeMerge{rank: int32(rank), result: int32(ab)}
	}
	return t, nil
}

// addAdded registers tok as an added token unless it already is.
func (t *Tokenizer) addAdded(tok string, id int) {
	if tok == "" || slices.Contains(t.added, tok) {
		return
	}
	t.added = append(t.added, tok)
	t.addedID = append(t.addedID, id)
}

// VocabSize is the number of tokens in the vocabulary (CLIPTokenizer
// vocab_size, 49408 for CLIP); every id is below it.
func (t *Tokenizer) VocabSize() int { return len(t.decoder) }

// Tokenize returns the BPE tokens of text, without BOS and EOS: what
// CLIPTokenizer.tokenize returns, e.g. ["a</w>", "photo</w>"] for
// "A photo".
func (t *Tokenizer) Tokenize(text string) []string {
	var toks []string
	t.each(text, func(id int, tok string) { toks = append(toks, tok) })
	return toks
}

// Encode returns BOS, the ids of text's tokens and EOS, neither truncated
// nor padded (what diffusers calls untruncated_ids).
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 1, 2+len(text)/2)
	ids[0] = t.BOS
	t.each(text, func(id int, tok string) { ids = append(ids, id) })
	return append(ids, t.EOS)
}

// EncodePadded returns exactly t.MaxLength ids: BOS, the first
// t.MaxLength-2 token ids of text, EOS, then the padding id. truncated
// reports whether tokens were dropped. This is diffusers' call
// tokenizer(prompt, padding="max_length", max_length=77, truncation=True).
func (t *Tokenizer) EncodePadded(text string) (ids []int, truncated bool) {
	room := t.MaxLength - 2
	ids = make([]int, 1, t.MaxLength)
	ids[0] = t.BOS
	t.each(text, func(id int, tok string) {
		if len(ids) > room {
			truncated = true
			return
		}
		ids = append(ids, id)
	})
	ids = append(ids, t.EOS)
	for len(ids) < t.MaxLength {
		ids = append(ids, t.Pad)
	}
	return ids, truncated
}

// Decode turns ids back into text, best effort, for logs and truncation
// warnings (CLIPTokenizer.convert_tokens_to_string): the tokens are joined,
// their characters mapped back to bytes, "</w>" becomes a space and the
// result is trimmed. Special tokens are kept as text, ids outside the
// vocabulary are skipped and invalid UTF-8 becomes U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	var raw []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.decoder) {
			continue
		}
		for _, r := range t.decoder[id] {
			if b, ok := t.byteDecoder[r]; ok {
				raw = append(raw, b)
			} else {
				raw = utf8.AppendRune(raw, r)
			}
		}
	}
	s := strings.ToValidUTF8(string(raw), "\uFFFD")
	return strings.TrimSpace(strings.ReplaceAll(s, endOfWord, " "))
}

// each calls emit with the id and token string of every token of text, in
// order (PreTrainedTokenizer.tokenize then convert_tokens_to_ids).
func (t *Tokenizer) each(text string, emit func(id int, tok string)) {
	// Split at the added tokens: leftmost match first, the longest of those
	// starting there. For tokens that cannot overlap, which holds for CLIP's
	// (<|startoftext|>, <|endoftext|>, "!"), this is what transformers' Trie
	// does.
	next := make([]int, len(t.added)) // next match of each added token at or after pos, -1 unknown
	for k := range next {
		next[k] = -1
	}
	const none = int(^uint(0) >> 1)
	pos := 0
	for {
		best, bestK := none, -1
		for k, a := range t.added {
			if next[k] != none && next[k] < pos {
				if i := strings.Index(text[pos:], a); i >= 0 {
					next[k] = pos + i
				} else {
					next[k] = none
				}
			}
			if next[k] < best || (next[k] == best && bestK >= 0 && len(a) > len(t.added[bestK])) {
				best, bestK = next[k], k
			}
		}
		if bestK < 0 {
			t.eachPlain(text[pos:], emit)
			return
		}
		t.eachPlain(text[pos:best], emit)
		emit(t.addedID[bestK], t.added[bestK])
		pos = best + len(t.added[bestK])
	}
}

// eachPlain tokenises text that holds no added token (CLIPTokenizer._tokenize
// and convert_tokens_to_ids).
func (t *Tokenizer) eachPlain(text string, emit func(id int, tok string)) {
	if text == "" {
		return
	}
	var words [16]string
	for _, w := range basicWords(words[:0], text) {
		clipPieces(w, func(piece string) {
			// CLIPTokenizer's BPE cache starts with these two, mapped to
			// themselves (no "</w>").
			if piece == startOfText || piece == endOfText {
				emit(t.tokenID(piece), piece)
				return
			}
			for _, s := range t.bpe(piece) {
				id := int(s)
				if id >= len(t.decoder) {
					id = t.Unk // a byte symbol missing from the vocabulary
				}
				emit(id, t.symbols[s])
			}
		})
	}
}

// tokenID is CLIPTokenizer._convert_token_to_id: the vocabulary id, or the
// unknown token's.
func (t *Tokenizer) tokenID(tok string) int {
	if id, ok := t.vocab[tok]; ok {
		return id
	}
	return t.Unk
}

// bpe returns the BPE symbols of piece, from the cache if possible. The
// result must not be modified.
func (t *Tokenizer) bpe(piece string) []int32 {
	t.mu.RLock()
	syms, ok := t.cache[piece]
	t.mu.RUnlock()
	if ok {
		return syms
	}
	syms = t.merge(piece)
	if len(piece) <= maxCachedPiece {
		t.mu.Lock()
		if len(t.cache) >= maxCacheEntries {
			clear(t.cache)
		}
		t.cache[strings.Clone(piece)] = syms
		t.mu.Unlock()
	}
	return syms
}

// bpeItem is a candidate merge in merge's heap: the pair of symbols left,
// right starting at position pos, whose merge has rank rank.
type bpeItem struct {
	rank, pos   int32
	left, right int32
}

// merge is CLIPTokenizer.bpe on the bytes of piece (non-empty): starting
// from one symbol per byte, the last one with "</w>", it repeatedly takes
// the adjacent pair of lowest rank and merges all its occurrences left to
// right (non-overlapping), until no adjacent pair has a rank. A heap of
// candidate pairs keeps this O(n log n) in the length of the piece; the
// occurrences of the chosen pair are merged in one round, exactly as the
// Python loop does.
func (t *Tokenizer) merge(piece string) []int32 {
	n := len(piece)
	if n == 1 {
		return []int32{t.lastSym[piece[0]]}
	}
	sym := make([]int32, n) // -1 once merged into the left neighbour
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := 0; i < n; i++ {
		sym[i] = t.byteSym[piece[i]]
		prev[i] = int32(i - 1)
		next[i] = int32(i + 1)
	}
	sym[n-1] = t.lastSym[piece[n-1]]
	next[n-1] = -1

	h := make(bpeHeap, 0, n)
	for i := 0; i+1 < n; i++ {
		h.add(t, int32(i), sym[i], sym[i+1])
	}
	h.init()
	var round []int32
	for len(h) > 0 {
		rank := h[0].rank
		round = round[:0]
		for len(h) > 0 && h[0].rank == rank {
			it := h.pop()
			// Skip candidates whose pair has changed since they were added.
			if sym[it.pos] == it.left && next[it.pos] >= 0 && sym[next[it.pos]] == it.right {
				round = append(round, it.pos)
			}
		}
		slices.Sort(round)
		for _, p := range round {
			q := next[p]
			if sym[p] < 0 || q < 0 {
				continue // consumed earlier in this round
			}
			m, ok := t.merges[pairKey(sym[p], sym[q])]
			if !ok || m.rank != rank {
				continue
			}
			sym[p] = m.result
			sym[q] = -1
			next[p] = next[q]
			if next[q] >= 0 {
				prev[next[q]] = p
			}
			if l := prev[p]; l >= 0 {
				h.push(t, l, sym[l], sym[p])
			}
			if r := next[p]; r >= 0 {
				h.push(t, p, sym[p], sym[r])
			}
		}
	}
	out := make([]int32, 0, 4)
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, sym[i])
	}
	return out
}

// bpeHeap is a binary min-heap of merge candidates ordered by rank.
type bpeHeap []bpeItem

// add appends the candidate (a, b) at pos if the pair has a merge, without
// restoring the heap order (see init).
func (h *bpeHeap) add(t *Tokenizer, pos, a, b int32) bool {
	m, ok := t.merges[pairKey(a, b)]
	if ok {
		*h = append(*h, bpeItem{rank: m.rank, pos: pos, left: a, right: b})
	}
	return ok
}

func (h bpeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// push adds the candidate (a, b) at pos if the pair has a merge.
func (h *bpeHeap) push(t *Tokenizer, pos, a, b int32) {
	if !h.add(t, pos, a, b) {
		return
	}
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent].rank <= s[i].rank {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *bpeHeap) pop() bpeItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return top
}

func (h bpeHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].rank < h[l].rank {
			m = r
		}
		if h[i].rank <= h[m].rank {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
