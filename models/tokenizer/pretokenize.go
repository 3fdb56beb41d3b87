package tokenizer

import (
	"sort"
	"unicode"
)

// A pre-tokenizer cuts text into words before BPE runs on each word. It is
// a sequence of steps; each step re-cuts every piece the previous step
// produced, the way llama.cpp's unicode_regex_split applies its list of
// regular expressions. Pieces are measured in code points.
type preTokenizer []splitStep

// splitStep refines a list of piece lengths (in code points) over t.
type splitStep interface {
	split(t *splitText, pieces []int) []int
}

// splitText is the text being pre-tokenized, decoded once into code points
// with their classes, plus the two per-code-point views that llama.cpp's
// regular-expression fallback matches against.
type splitText struct {
	cps   []rune
	flags []uint16
	// collapsed maps every code point to one byte: ASCII stays itself,
	// non-ASCII whitespace becomes '\v' and other non-ASCII code points
	// become a byte naming their class (0xD1 number, 0xD2 letter, 0xD3
	// punctuation, 0xD4 mark, 0xD5 symbol, 0xD0 anything else). Patterns
	// that use \p{..} classes run on this view.
	collapsed []byte
	// wide is the code points with non-ASCII whitespace replaced by '\v';
	// patterns without \p{..} classes run on this view.
	wide []rune
}

func newSplitText(s string) *splitText {
	t := &splitText{cps: decodeCodepoints(s, make([]rune, 0, len(s)))}
	t.flags = make([]uint16, len(t.cps))
	for i, cp := range t.cps {
		t.flags[i] = codepointFlags(cp)
	}
	return t
}

// view selects the representation a pattern matches against.
type view uint8

const (
	viewCollapsed view = iota
	viewWide
)

// unit returns code point i in view v.
func (t *splitText) unit(v view, i int) rune {
	if v == viewCollapsed {
		if t.collapsed == nil {
			t.collapsed = make([]byte, len(t.cps))
			for j, cp := range t.cps {
				t.collapsed[j] = collapse(cp, t.flags[j])
			}
		}
		return rune(t.collapsed[i])
	}
	if t.wide == nil {
		t.wide = make([]rune, len(t.cps))
		for j, cp := range t.cps {
			if cp >= 0x80 && t.flags[j]&cpWhitespace != 0 {
				cp = '\v'
			}
			t.wide[j] = cp
		}
	}
	return t.wide[i]
}

func collapse(cp rune, flags uint16) byte {
	if cp < 0x80 {
		return byte(cp)
	}
	if flags&cpWhitespace != 0 {
		return '\v'
	}
	switch flags & cpCategories {
	case cpNumber:
		return 0xD1
	case cpLetter:
		return 0xD2
	case cpPunct:
		return 0xD3
	case cpMark:
		return 0xD4
	case cpSymbol:
		return 0xD5
	}
	return 0xD0
}

// split runs the steps over s and returns the words as UTF-8 strings
// rebuilt from the decoded code points (so undecodable bytes come back as
// U+FFFD).
func (p preTokenizer) split(s string) []string {
	t := newSplitText(s)
	pieces := []int{len(t.cps)}
	for _, st := range p {
		pieces = st.split(t, pieces)
	}
	words := make([]string, 0, len(pieces))
	buf := make([]byte, 0, 64)
	start := 0
	for _, n := range pieces {
		buf = buf[:0]
		for _, cp := range t.cps[start : start+n] {
			buf = appendCodepoint(buf, cp)
		}
		words = append(words, string(buf))
		start += n
	}
	return words
}

// pieceCutter collects the pieces of one input piece [ini, end).
type pieceCutter struct {
	out  []int
	prev int
}

// cut ends a piece at end; empty pieces are dropped. It returns the length
// of the piece.
func (c *pieceCutter) cut(end int) int {
	n := end - c.prev
	if n > 0 {
		c.out = append(c.out, n)
	}
	c.prev = end
	return n
}

// ---------------------------------------------------------------------------
// Hand-written splitters. llama.cpp replaces two regular expressions by code
// (the GPT-2 one and the LLaMA 3 one); these follow that code decision for
// decision, including where it departs from what the regular expression
// would do. Classes come from the code point flags; positions outside the
// piece have no flags at all.

// gpt2Split implements 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
type gpt2Split struct{}

func (gpt2Split) split(t *splitText, pieces []int) []int {
	out := make([]int, 0, len(pieces)*4)
	start := 0
	for _, n := range pieces {
		ini, end := start, start+n
		start = end
		cp := func(i int) rune {
			if i >= ini && i < end {
				return t.cps[i]
			}
			return -1
		}
		fl := func(i int) uint16 {
			if i >= ini && i < end {
				return t.flags[i]
			}
			return 0
		}
		c := pieceCutter{out: out, prev: ini}
		for pos := ini; pos < end; {
			ch, f := cp(pos), fl(pos)
			if ch == '\'' && pos+1 < end {
				next := cp(pos + 1)
				if next == 's' || next == 't' || next == 'm' || next == 'd' {
					pos += c.cut(pos + 2)
					continue
				}
				if pos+2 < end {
					next2 := cp(pos + 2)
					if (next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l') {
						pos += c.cut(pos + 3)
						continue
					}
				}
			}
			f2 := f
			if ch == ' ' {
				f2 = fl(pos + 1)
			}
			if f2&cpLetter != 0 || f2&cpNumber != 0 {
				class := f2 & (cpLetter | cpNumber)
				if ch == ' ' {
					pos++
				}
				for fl(pos)&class != 0 {
					pos++
				}
				c.cut(pos)
				continue
			}
			if isOther(f2) {
				if ch == ' ' {
					pos++
				}
				for isOther(fl(pos)) {
					pos++
				}
				c.cut(pos)
				continue
			}
			nws := 0
			for fl(pos+nws)&cpWhitespace != 0 {
				nws++
			}
			if nws > 1 && cp(pos+nws) >= 0 {
				pos += nws - 1
				c.cut(pos)
				continue
			}
			if nws > 0 {
				pos += nws
				c.cut(pos)
				continue
			}
			pos++
			c.cut(pos)
		}
		out = c.out
	}
	return out
}

// isOther reports [^\s\p{L}\p{N}] for flags that exist (positions outside
// the piece have zero flags and match nothing).
func isOther(f uint16) bool {
	return f != 0 && f&(cpWhitespace|cpLetter|cpNumber) == 0
}

// llama3Split implements
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
type llama3Split struct{}

func (llama3Split) split(t *splitText, pieces []int) []int {
	out := make([]int, 0, len(pieces)*4)
	start := 0
	for _, n := range pieces {
		ini, end := start, start+n
		start = end
		cp := func(i int) rune {
			if i >= ini && i < end {
				return t.cps[i]
			}
			return -1
		}
		fl := func(i int) uint16 {
			if i >= ini && i < end {
				return t.flags[i]
			}
			return 0
		}
		c := pieceCutter{out: out, prev: ini}
		for pos := ini; pos < end; {
			ch, f := cp(pos), fl(pos)
			if ch == '\'' && pos+1 < end {
				next := unicode.ToLower(cp(pos + 1))
				if next == 's' || next == 't' || next == 'm' || next == 'd' {
					pos += c.cut(pos + 2)
					continue
				}
				if pos+2 < end {
					next2 := unicode.ToLower(cp(pos + 2))
					if (next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l') {
						pos += c.cut(pos + 3)
						continue
					}
				}
			}
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if ch != '\r' && ch != '\n' && f&cpNumber == 0 {
				if f&cpLetter != 0 || fl(pos+1)&cpLetter != 0 {
					pos++
					for fl(pos)&cpLetter != 0 {
						pos++
					}
					c.cut(pos)
					continue
				}
			}
			// \p{N}{1,3}
			if f&cpNumber != 0 {
				run := pos
				for fl(pos)&cpNumber != 0 {
					pos++
					if pos-run >= 3 {
						c.cut(pos)
						run = pos
					}
				}
				c.cut(pos)
				continue
			}
			// <space>?[^\s\p{L}\p{N}]+[\r\n]*  (the guard tests the flags of
			// the current code point, not of the one after the space)
			f2 := f
			if ch == ' ' {
				f2 = fl(pos + 1)
			}
			if f2&(cpWhitespace|cpLetter|cpNumber) == 0 && f != 0 {
				if ch == ' ' {
					pos++
				}
				for isOther(f2) {
					pos++
					f2 = fl(pos)
				}
				for ch2 := cp(pos); ch2 == '\r' || ch2 == '\n'; ch2 = cp(pos) {
					pos++
				}
				c.cut(pos)
				continue
			}
			nws, lastNL := 0, 0
			for fl(pos+nws)&cpWhitespace != 0 {
				if ch2 := cp(pos + nws); ch2 == '\r' || ch2 == '\n' {
					lastNL = pos + nws + 1
				}
				nws++
			}
			if lastNL > 0 { // \s*[\r\n]+
				pos = lastNL
				c.cut(pos)
				continue
			}
			if nws > 1 && cp(pos+nws) >= 0 { // \s+(?!\S)
				pos += nws - 1
				c.cut(pos)
				continue
			}
			if nws > 0 { // \s+
				pos += nws
				c.cut(pos)
				continue
			}
			pos++
			c.cut(pos)
		}
		out = c.out
	}
	return out
}

// ---------------------------------------------------------------------------
// Regular-expression steps. llama.cpp runs every other expression through
// std::regex (ECMAScript, leftmost-first backtracking) over one of the two
// views. The expressions used by the supported pre-tokenizers are simple
// enough to match by hand; each pattern below documents the expression it
// stands for and returns exactly the matches std::regex would.

// pattern finds the leftmost match at or after pos in the piece [pos, end).
type pattern interface {
	find(t *splitText, pos, end int) (ms, me int, ok bool)
}

// regexStep cuts each piece into its matches and the gaps between them,
// as llama.cpp's unicode_regex_split_stl does.
type regexStep struct{ p pattern }

func (s regexStep) split(t *splitText, pieces []int) []int {
	out := make([]int, 0, len(pieces)*2)
	start := 0
	for _, n := range pieces {
		end := start + n
		prev := start
		for pos := start; pos < end; {
			ms, me, ok := s.p.find(t, pos, end)
			if !ok {
				break
			}
			if ms > prev {
				out = append(out, ms-prev)
			}
			out = append(out, me-ms)
			prev, pos = me, me
		}
		if prev < end {
			out = append(out, end-prev)
		}
		start = end
	}
	return out
}

// anchoredPattern is a pattern given by the match it makes at a fixed start
// (the end of the match, or -1); find tries each start in turn.
type anchoredPattern interface {
	matchAt(t *splitText, i, end int) int
}

func findFirst(p anchoredPattern, t *splitText, pos, end int) (int, int, bool) {
	for i := pos; i < end; i++ {
		if e := p.matchAt(t, i, end); e > i {
			return i, e, true
		}
	}
	return 0, 0, false
}

// unitClass is a bracket expression over one view.
type unitClass struct {
	v  view
	in func(u rune) bool
}

func (c unitClass) has(t *splitText, i, end int) bool {
	return i < end && c.in(t.unit(c.v, i))
}

// isSpaceUnit is \s of std::regex in the "C" locale, applied to a view
// (where non-ASCII whitespace already reads as '\v').
func isSpaceUnit(u rune) bool { return u == ' ' || (u >= '\t' && u <= '\r') }

// classRun matches [class]+ when plus is set, else exactly count
// consecutive [class] units.
type classRun struct {
	c     unitClass
	plus  bool
	count int
}

func (r classRun) matchAt(t *splitText, i, end int) int {
	if r.plus {
		j := i
		for r.c.has(t, j, end) {
			j++
		}
		return j
	}
	for k := 0; k < r.count; k++ {
		if !r.c.has(t, i+k, end) {
			return -1
		}
	}
	return i + r.count
}

func (r classRun) find(t *splitText, pos, end int) (int, int, bool) { return findFirst(r, t, pos, end) }

// spaceThenRun matches \s?[class]+.
type spaceThenRun struct{ c unitClass }

func (r spaceThenRun) matchAt(t *splitText, i, end int) int {
	j := i
	if isSpaceUnit(t.unit(r.c.v, i)) && r.c.has(t, i+1, end) {
		j = i + 1
	} else if !r.c.has(t, i, end) {
		return -1
	}
	for r.c.has(t, j, end) {
		j++
	}
	return j
}

func (r spaceThenRun) find(t *splitText, pos, end int) (int, int, bool) {
	return findFirst(r, t, pos, end)
}

// trailingSpace matches \s+$ ($ being the end of the piece).
type trailingSpace struct{ v view }

func (s trailingSpace) find(t *splitText, pos, end int) (int, int, bool) {
	i := end
	for i > pos && isSpaceUnit(t.unit(s.v, i-1)) {
		i--
	}
	if i == end {
		return 0, 0, false
	}
	return i, end, true
}

// qwen2Pattern matches, on the collapsed view,
// (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Unlike the LLaMA 3 expression, llama.cpp has no hand-written splitter for
// it, so its std::regex semantics on the collapsed view are what count.
type qwen2Pattern struct{}

func (qwen2Pattern) find(t *splitText, pos, end int) (int, int, bool) {
	return findFirst(qwen2Pattern{}, t, pos, end)
}

func (qwen2Pattern) matchAt(t *splitText, i, end int) int {
	u := func(k int) rune {
		if k < end {
			return t.unit(viewCollapsed, k)
		}
		return -1
	}
	lower := func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	c := u(i)
	if c == '\'' {
		n1, n2 := lower(u(i+1)), lower(u(i+2))
		switch {
		case n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd':
			return i + 2
		case (n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l'):
			return i + 3
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c != '\r' && c != '\n' && !isLetterUnit(c) && !isNumberUnit(c) && isLetterUnit(u(i+1)) {
		j := i + 1
		for isLetterUnit(u(j)) {
			j++
		}
		return j
	}
	if isLetterUnit(c) {
		j := i
		for isLetterUnit(u(j)) {
			j++
		}
		return j
	}
	// \p{N}
	if isNumberUnit(c) {
		return i + 1
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	other := func(r rune) bool { return r >= 0 && !isSpaceUnit(r) && !isLetterUnit(r) && !isNumberUnit(r) }
	j := -1
	if c == ' ' && other(u(i+1)) {
		j = i + 1
	} else if other(c) {
		j = i
	}
	if j >= 0 {
		for other(u(j)) {
			j++
		}
		for r := u(j); r == '\r' || r == '\n'; r = u(j) {
			j++
		}
		return j
	}
	if !isSpaceUnit(c) {
		return -1
	}
	ws, lastNL := i, -1
	for ws < end && isSpaceUnit(u(ws)) {
		if r := u(ws); r == '\r' || r == '\n' {
			lastNL = ws
		}
		ws++
	}
	switch {
	case lastNL >= 0: // \s*[\r\n]+
		return lastNL + 1
	case ws == end: // \s+(?!\S) at the end of the piece
		return ws
	case ws-i > 1: // \s+(?!\S), giving back the space before \S
		return ws - 1
	}
	return ws // \s+
}

// Classes of the collapsed view.

func isLetterUnit(u rune) bool { return u == 0xD2 || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') }
func isNumberUnit(u rune) bool { return u == 0xD1 || (u >= '0' && u <= '9') }

// isPunctUnit is \p{P} on the collapsed view. For ASCII llama.cpp lists the
// members itself: !-#%-*,-/:-;?-@[-]_{} (so '$', '+', '<', '=', '>', '^',
// '`', '|' and '~' are not punctuation there).
func isPunctUnit(u rune) bool {
	if u == 0xD3 {
		return true
	}
	switch {
	case u >= '!' && u <= '#', u >= '%' && u <= '*', u >= ',' && u <= '/',
		u == ':' || u == ';', u == '?' || u == '@', u >= '[' && u <= ']',
		u == '_', u == '{', u == '}':
		return true
	}
	return false
}

func inRanges(u rune, ranges [][2]rune) bool {
	for _, r := range ranges {
		if u >= r[0] && u <= r[1] {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// The pre-tokenizers by name.

var (
	newlineOnce = classRun{c: unitClass{viewWide, func(u rune) bool { return u == '\r' || u == '\n' }}, count: 1}
	numberRun   = classRun{c: unitClass{viewCollapsed, isNumberUnit}, plus: true}
	numberOnce  = classRun{c: unitClass{viewCollapsed, isNumberUnit}, count: 1}
	threeDigits = classRun{c: unitClass{viewWide, func(u rune) bool { return u >= '0' && u <= '9' }}, count: 3}

	// [一-龥ࠀ-一가-퟿]+
	cjkRun = classRun{c: unitClass{viewWide, func(u rune) bool {
		return (u >= 0x4E00 && u <= 0x9FA5) || (u >= 0x0800 && u <= 0x4E00) || (u >= 0xAC00 && u <= 0xD7FF)
	}}, plus: true}

	// \s?[!-/:-~！-／：-～‘-‟　-。]+
	deepseekPunct = spaceThenRun{unitClass{viewWide, func(u rune) bool {
		return inRanges(u, [][2]rune{{'!', '/'}, {':', '~'}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}})
	}}}

	// \s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+ : the cased letters of DeepSeek LLM's
	// tokenizer.json, written out as code point ranges.
	deepseekLetters = spaceThenRun{unitClass{viewWide, isDeepseekLetter}}
)

var deepseekLetterRanges = [][2]rune{
	{'A', 'Z'}, {'a', 'z'}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
	{0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
	{0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
	{0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
	{0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A},
	{0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57},
	{0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4},
	{0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3},
	{0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
	{0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
	{0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139},
	{0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B},
	{0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B},
	{0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06},
	{0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
	{0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
}

func isDeepseekLetter(u rune) bool {
	if u < 0x80 {
		return (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z')
	}
	r := deepseekLetterRanges
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= u })
	return i < len(r) && r[i][0] <= u
}

// punctOrSymbolRun matches [\p{P}\$\+<=>\^~\|]+ (and, with backtick, the
// Falcon variant that adds '`').
func punctOrSymbolRun(backtick bool) classRun {
	return classRun{c: unitClass{viewCollapsed, func(u rune) bool {
		switch u {
		case '$', '+', '<', '=', '>', '^', '~', '|':
			return true
		case '`':
			return backtick
		}
		return isPunctUnit(u)
	}}, plus: true}
}

var (
	preDefault = preTokenizer{
		regexStep{punctOrSymbolRun(false)}, gpt2Split{}, regexStep{numberRun}, regexStep{threeDigits},
	}
	preGPT2        = preTokenizer{gpt2Split{}}
	preLlama3      = preTokenizer{llama3Split{}}
	preQwen2       = preTokenizer{regexStep{qwen2Pattern{}}}
	preFalcon      = preTokenizer{regexStep{punctOrSymbolRun(true)}, gpt2Split{}, regexStep{threeDigits}}
	preStarCoder   = preTokenizer{regexStep{numberOnce}, gpt2Split{}}
	preDeepseekLLM = preTokenizer{
		regexStep{newlineOnce}, regexStep{deepseekLetters}, regexStep{deepseekPunct},
		regexStep{trailingSpace{viewWide}}, regexStep{cjkRun}, regexStep{numberRun},
	}
	preDeepseekCoder = preTokenizer{
		regexStep{newlineOnce},
		regexStep{spaceThenRun{unitClass{viewCollapsed, isLetterUnit}}},
		regexStep{spaceThenRun{unitClass{viewCollapsed, isPunctUnit}}},
		regexStep{cjkRun}, regexStep{numberOnce},
	}
)
