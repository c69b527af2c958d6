module github.com/iscc/iscc-vdb/bindings/go

go 1.21
