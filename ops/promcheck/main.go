// Command promcheck checks Prometheus rule files and PromQL expressions with Prometheus' own
// parsers, offline (the test suite builds it; promtool itself does not build from the module
// proxy here).
//
//	promcheck rules FILE...   parse rule files as Prometheus loads them (expressions, templates)
//	promcheck exprs           parse each PromQL expression of a JSON array read from stdin
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: promcheck rules FILE... | promcheck exprs < exprs.json")
		os.Exit(2)
	}
	promql := parser.NewParser(parser.Options{})
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	failed := false
	switch os.Args[1] {
	case "rules":
		for _, path := range os.Args[2:] {
			groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, logger)
			for _, err := range errs {
				fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
				failed = true
			}
			if groups != nil {
				rules := 0
				for _, group := range groups.Groups {
					rules += len(group.Rules)
				}
				fmt.Printf("%s: %d groups, %d rules\n", path, len(groups.Groups), rules)
			}
		}
	case "exprs":
		var exprs []string
		if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
			fmt.Fprintf(os.Stderr, "reading expressions: %v\n", err)
			os.Exit(2)
		}
		for _, expr := range exprs {
			if _, err := promql.ParseExpr(expr); err != nil {
				fmt.Fprintf(os.Stderr, "%q: %v\n", expr, err)
				failed = true
			}
		}
		fmt.Printf("%d expressions\n", len(exprs))
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
