// Context the README's updater snippet assumes.
int I = 16, H = 8, layers = 2, slots = 4, E = 8, rank = 0;
Placement placement;
std::unique_ptr<eccl::StatelessGroup> group;
std::vector<double> tokensPerLocalSlot(4);
