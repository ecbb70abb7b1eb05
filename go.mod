module github.com/ringd/ringd

go 1.26
