// Quick-start: index two entries in memory and search one of them.
//
//	cargo build --lib && cd examples/go && go run .
package main

import (
	"errors"
	"fmt"
	"log"

	isccvdb "github.com/iscc/iscc-vdb/bindings/go"
)

func main() {
	ix, err := isccvdb.OpenInMemory(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer ix.Close()

	ids, err := ix.Add(
		isccvdb.Entry{"iscc_code": "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY", "title": "first"},
		isccvdb.Entry{"units": []string{"ISCC:AAAYPXW445FTYNJ3", "ISCC:EAARIWBKT3AIVI7O"}, "title": "second"},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added:", ids)

	m, err := ix.Search(isccvdb.Query{IsccCode: "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY"}, isccvdb.SearchOptions{Count: 5})
	if err != nil {
		log.Fatal(err)
	}
	for _, x := range m.Matches {
		fmt.Printf("%s score %.3f %v\n", x.IsccID, x.Score, x.Units)
	}

	// Errors carry a status code.
	_, err = ix.Add(isccvdb.Entry{"iscc_code": "ISCC:NOT-VALID"})
	if errors.Is(err, isccvdb.ErrInvalidIscc) {
		fmt.Println("rejected:", err)
	}
}
