package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// arithmeticProblem is one synthetic arithmetic question: a op b, where a
// has exactly digits digits, and b as many for + and - (with b ≤ a for -)
// or one digit for *.
type arithmeticProblem struct {
	a, b   int
	op     byte // '+', '-' or '*'
	digits int
	// columns selects the worked format that restates each column's two
	// digits and its carry right before their two-digit result (see
	// workedColumns); false selects the shifted-operands format alone.
	columns bool
	// letters, with columns, writes the restated column digits and carry
	// as the letters a (0) to j (9), tokens whose states in small bases
	// are far less alike than the digits' (see workedColumns).
	letters bool
}

// question returns the user's side, "347+589".
func (p arithmeticProblem) question() string {
	return fmt.Sprintf("%d%c%d", p.a, p.op, p.b)
}

// result returns the exact answer.
func (p arithmeticProblem) result() int {
	switch p.op {
	case '+':
		return p.a + p.b
	case '-':
		return p.a - p.b
	default:
		return p.a * p.b
	}
}

// workedSolution returns the assistant's side: one line per column, least
// significant first, then "answer: N". Line k restates the operands shifted
// right by k columns (zero-padded to their width, so the column being worked
// is always the last digit of each), the carry (c) or borrow (b) into
// column k, and the result digits so far, newest first, padded with zeros
// to digits+1. Every line has the same length, so each token of a line
// sits at a fixed distance from the tokens it depends on in the line
// before:
//
//	347+589 c0 6000
//	034+058 c1 3600
//	003+005 c1 9360
//	000+000 c0 0936
//	answer: 936
func (p arithmeticProblem) workedSolution() string {
	var sb strings.Builder
	width := p.digits + 1
	acc := strings.Repeat("0", width)
	mark := byte('c')
	if p.op == '-' {
		mark = 'b'
	}
	carry := 0
	pow := 1
	for k := 0; k <= p.digits; k++ {
		a := p.a / pow % 10
		x := fmt.Sprintf("%0*d", p.digits, p.a/pow)
		var y string
		var digit int
		switch p.op {
		case '+':
			y = fmt.Sprintf("%0*d", p.digits, p.b/pow)
			s := a + p.b/pow%10 + carry
			fmt.Fprintf(&sb, "%s+%s %c%d ", x, y, mark, carry)
			digit, carry = s%10, s/10
		case '-':
			y = fmt.Sprintf("%0*d", p.digits, p.b/pow)
			s := a - p.b/pow%10 - carry
			fmt.Fprintf(&sb, "%s-%s %c%d ", x, y, mark, carry)
			digit, carry = s, 0
			if s < 0 {
				digit, carry = s+10, 1
			}
		default:
			s := a*p.b + carry
			fmt.Fprintf(&sb, "%s*%d %c%d ", x, p.b, mark, carry)
			digit, carry = s%10, s/10
		}
		acc = strconv.Itoa(digit) + acc[:width-1]
		sb.WriteString(acc)
		sb.WriteByte('\n')
		pow *= 10
	}
	fmt.Fprintf(&sb, "answer: %d", p.result())
	return sb.String()
}

// worked returns the assistant's side in the problem's format.
func (p arithmeticProblem) worked() string {
	if p.columns {
		return p.workedColumns()
	}
	return p.workedSolution()
}

// workedColumns returns the assistant's side in the columns format: like
// workedSolution, one line per column, least significant first, each line
// restating the operands shifted right by k columns, but then the column's
// own sum written out, its two digits, the carry (or borrow) in, and the
// column's two-digit result (carry or borrow out, then the digit), before
// the result digits so far, newest first. The new digit then depends only on
// the five tokens just before it, a one-digit table of 200 facts, and every
// line still has the same length:
//
//	347+589 7+9+0 16 6000
//	034+058 4+8+1 13 3600
//	003+005 3+5+1 09 9360
//	000+000 0+0+0 00 0936
//	answer: 936
//
// With letters, the column's digits and carry are written as letters:
//
//	347+589:h+j+a 16 6000
func (p arithmeticProblem) workedColumns() string {
	var sb strings.Builder
	width := p.digits + 1
	acc := strings.Repeat("0", width)
	carry := 0
	pow := 1
	for k := 0; k <= p.digits; k++ {
		a, b := p.a/pow%10, p.b/pow%10
		var digit, out int
		switch p.op {
		case '+':
			s := a + b + carry
			digit, out = s%10, s/10
		case '-':
			s := a - b - carry
			digit, out = s, 0
			if s < 0 {
				digit, out = s+10, 1
			}
		default:
			b = p.b
			s := a*b + carry
			digit, out = s%10, s/10
		}
		switch {
		case p.letters && p.op == '*':
			fmt.Fprintf(&sb, "%0*d*%d:%c*%c+%c %d%d ", p.digits, p.a/pow, p.b, letter(a), letter(b), letter(carry), out, digit)
		case p.letters:
			fmt.Fprintf(&sb, "%0*d%c%0*d:%c%c%c%c%c %d%d ", p.digits, p.a/pow, p.op, p.digits, p.b/pow, letter(a), p.op, letter(b), p.op, letter(carry), out, digit)
		case p.op == '*':
			fmt.Fprintf(&sb, "%0*d*%d %d*%d+%d %d%d ", p.digits, p.a/pow, p.b, a, b, carry, out, digit)
		default:
			fmt.Fprintf(&sb, "%0*d%c%0*d %d%c%d%c%d %d%d ", p.digits, p.a/pow, p.op, p.digits, p.b/pow, a, p.op, b, p.op, carry, out, digit)
		}
		acc = strconv.Itoa(digit) + acc[:width-1]
		sb.WriteString(acc)
		sb.WriteByte('\n')
		carry = out
		pow *= 10
	}
	fmt.Fprintf(&sb, "answer: %d", p.result())
	return sb.String()
}

// letter returns the letter that stands for the digit d (0 to 9) in the
// letters variant of the columns format: a for 0 through j for 9.
func letter(d int) byte { return byte('a' + d) }

// parseArithmeticOps parses a comma-separated list of add, sub and mul.
func parseArithmeticOps(s string) ([]byte, error) {
	var ops []byte
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "add":
			ops = append(ops, '+')
		case "sub":
			ops = append(ops, '-')
		case "mul":
			ops = append(ops, '*')
		default:
			return nil, fmt.Errorf("--ops %q: want a comma-separated list of add, sub and mul", s)
		}
	}
	return ops, nil
}

// drawArithmetic draws a problem with an operation from ops.
func drawArithmetic(rng *rand.Rand, ops []byte, digits int) arithmeticProblem {
	lo, hi := 1, 10
	for range digits - 1 {
		lo, hi = lo*10, hi*10
	}
	if digits == 1 {
		lo = 0
	}
	p := arithmeticProblem{op: ops[rng.IntN(len(ops))], digits: digits}
	p.a = lo + rng.IntN(hi-lo)
	switch p.op {
	case '*':
		p.b = rng.IntN(10)
	case '-':
		p.b = lo + rng.IntN(p.a-lo+1)
	default:
		p.b = lo + rng.IntN(hi-lo)
	}
	return p
}

// arithmeticSets draws n training problems and then nTest held-out ones,
// all distinct, from seed. It fails when the problem space is too small
// to hold that many distinct problems.
func arithmeticSets(ops []byte, digits, n, nTest int, seed uint64) (train, test []arithmeticProblem, err error) {
	if digits < 1 || digits > 6 {
		return nil, nil, fmt.Errorf("--digits %d: want 1 to 6", digits)
	}
	if n < 0 || nTest < 0 {
		return nil, nil, fmt.Errorf("problem counts %d and %d: want counts that are not negative", n, nTest)
	}
	rng := rand.New(rand.NewPCG(seed, 0xa417))
	seen := map[arithmeticProblem]bool{}
	draw := func(count int) ([]arithmeticProblem, error) {
		var out []arithmeticProblem
		for tries := 0; len(out) < count; tries++ {
			if tries > 100*(count+10) {
				return nil, fmt.Errorf("only %d distinct problems found for %d wanted: use more --digits", len(out), count)
			}
			p := drawArithmetic(rng, ops, digits)
			if seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
		return out, nil
	}
	if train, err = draw(n); err != nil {
		return nil, nil, err
	}
	if test, err = draw(nTest); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// writeArithmetic writes problems as chat JSONL, one user question and one
// worked assistant answer per line.
func writeArithmetic(w io.Writer, problems []arithmeticProblem) error {
	for _, p := range problems {
		line, err := json.Marshal(chatLine{Messages: []chatMessage{
			{Role: "user", Content: p.question()},
			{Role: "assistant", Content: p.worked()},
		}})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
			return err
		}
	}
	return nil
}

// parseAnswer returns the number after the last "answer:" in text (an
// optional minus sign and digits, after optional spaces), and whether there
// is one.
func parseAnswer(text string) (int64, bool) {
	i := strings.LastIndex(text, "answer:")
	if i < 0 {
		return 0, false
	}
	rest := strings.TrimLeft(text[i+len("answer:"):], " ")
	end := 0
	if end < len(rest) && rest[end] == '-' {
		end++
	}
	start := end
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == start || end-start > 18 {
		return 0, false
	}
	v, err := strconv.ParseInt(rest[:end], 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
