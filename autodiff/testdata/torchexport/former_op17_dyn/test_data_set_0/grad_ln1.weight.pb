B
ln1.weightJ RRJ>ÿv¼2(£=Ò-‘½Q³A<æÒ¼ ã<Ìæò»