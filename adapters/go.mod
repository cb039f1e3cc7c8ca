module github.com/bankbridge/bankbridge/adapters

go 1.26

replace github.com/bankbridge/bankbridge/gen => ../gen
