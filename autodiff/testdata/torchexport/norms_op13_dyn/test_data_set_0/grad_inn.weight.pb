B
inn.weightJ Œƒ¾”(á<u->Jà€>h»p>O:>
¾"#=