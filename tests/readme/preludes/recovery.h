// Context the README's recovery snippet assumes.
int E = 8;
std::shared_ptr<eccl::Store> store;
std::unique_ptr<eccl::ElasticGroup> group;
std::unique_ptr<ExpertWeights> ownedWeights;
ExpertWeights& weights = *ownedWeights;
std::unique_ptr<EplbUpdater> updater;
ExpertLoads loads;
auto serveOneStep = [] {};
