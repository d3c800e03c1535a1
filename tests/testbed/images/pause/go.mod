module devenv.test/pause

go 1.22
