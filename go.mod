module github.com/carryon/carryon

go 1.26
