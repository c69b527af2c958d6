module github.com/iscc/iscc-vdb/examples/go

go 1.21

require github.com/iscc/iscc-vdb/bindings/go v0.0.0

replace github.com/iscc/iscc-vdb/bindings/go => ../../bindings/go
